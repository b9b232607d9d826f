#!/usr/bin/perl
# Prints the SCRAM-SHA-256 verifier PostgreSQL stores for the password read from stdin
# (RFC 5802/7677, the format of pg_authid.rolpassword). Why: ALTER ROLE ... PASSWORD then carries
# only the verifier, so the plain password never reaches the server, its logs or `ps`.
# Perl because the official postgres image ships it (postgresql-common) and has no python;
# Digest::SHA and MIME::Base64 are core modules. A trailing newline of the input is dropped.
# Only printable ASCII is accepted: for it SASLprep (which the server applies) is the identity,
# and the project's generated passwords are alphanumeric.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256 sha256);
use MIME::Base64 qw(encode_base64);

my $iterations = 4096;    # PostgreSQL's default scram_iterations
local $/;
my $password = <STDIN>;
die "scram-verifier: no password on stdin\n" unless defined $password;
$password =~ s/\r?\n\z//;
die "scram-verifier: empty password\n" if $password eq '';
die "scram-verifier: only printable ASCII passwords are supported\n"
    if $password =~ /[^\x20-\x7e]/;

open(my $random, '<:raw', '/dev/urandom') or die "scram-verifier: /dev/urandom: $!\n";
read($random, my $salt, 16) == 16 or die "scram-verifier: short read from /dev/urandom\n";
close($random);

# PBKDF2-HMAC-SHA-256 with one 32-byte block (RFC 8018 section 5.2).
my $u = hmac_sha256($salt . pack('N', 1), $password);
my $salted = $u;
for (2 .. $iterations) {
    $u = hmac_sha256($u, $password);
    $salted ^= $u;
}
my $stored_key = sha256(hmac_sha256('Client Key', $salted));
my $server_key = hmac_sha256('Server Key', $salted);
my $b64 = sub { encode_base64($_[0], '') };
printf "SCRAM-SHA-256\$%d:%s\$%s:%s\n", $iterations, $b64->($salt), $b64->($stored_key),
    $b64->($server_key);
