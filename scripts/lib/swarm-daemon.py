"""Run on a node by the swarm steps, as root: the engine settings swarm mode needs, in
/etc/docker/daemon.json, without a restart (the caller reloads dockerd with SIGHUP).

- live-restore off: dockerd refuses to init or join a swarm with it, and refuses to start a swarm
  member that has it (docs.docker.com "Live restore"; docker/docs#16059);
- the platform's plain-HTTP registry on the manager trusted (insecure-registries), so the
  manager can push to it and the workers pull from it.
Both are reloadable settings (docs.docker.com "Live restore": `systemctl reload docker` or SIGHUP).
`single` undoes both: the bootstrap's single-host settings (live-restore on). python3 is on every
host that runs cloud-init. Prints "changed" or "unchanged".
usage: python3 - swarm|single REGISTRY < swarm-daemon.py
"""

import json
import os
import sys

PATH = "/etc/docker/daemon.json"


def main(mode: str, registry: str) -> None:
    try:
        with open(PATH) as file:
            config = json.load(file)
    except FileNotFoundError:
        config = {}
    before = json.dumps(config, sort_keys=True)
    registries = [r for r in config.get("insecure-registries", []) if r != registry]
    if mode == "swarm":
        config["live-restore"] = False
        registries.append(registry)
    elif mode == "single":
        config["live-restore"] = True
    else:
        sys.exit(f"swarm-daemon.py: unknown mode {mode!r}")
    if registries:
        config["insecure-registries"] = registries
    else:
        config.pop("insecure-registries", None)
    if json.dumps(config, sort_keys=True) == before:
        print("unchanged")
        return
    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    with open(PATH + ".jhc-new", "w") as file:
        json.dump(config, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(PATH + ".jhc-new", PATH)
    print("changed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
