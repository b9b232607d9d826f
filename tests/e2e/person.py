"""What a person does in the browser: log in, pick an image, use JupyterLab (selenium steps).

Selectors are JupyterHub 6's login/spawn templates and JupyterLab 4's DOM (Launcher card,
CodeMirror 6 editor); a wait that times out fails the test with the page's text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait


def page_text(driver: Any) -> str:
    try:
        return driver.find_element(By.TAG_NAME, "body").text[-2000:]
    except Exception:  # noqa: BLE001 - only for the failure message
        return "(no body)"


# JupyterLab re-renders parts of the page while it loads: an element found a moment ago can be
# gone (stale) by the time it is checked. Like a missing element, that means "look again".
LOOK_AGAIN = (NoSuchElementException, StaleElementReferenceException)


def wait(driver: Any, condition: Any, timeout: float, what: str) -> Any:
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=LOOK_AGAIN).until(condition)
    except TimeoutException as error:
        raise AssertionError(f"timed out ({timeout:.0f}s) waiting for {what} at {driver.current_url}"
                             f"\n--- page ---\n{page_text(driver)}") from error


def shot(driver: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def open_login(driver: Any, url: str) -> None:
    driver.get(f"{url}/hub/login")
    wait(driver, ec.presence_of_element_located((By.ID, "username_input")), 60, "the login form")


def log_in(driver: Any, url: str, user: str, password: str) -> None:
    """Fills and submits the login form (the caller checks where it led)."""
    open_login(driver, url)
    driver.find_element(By.ID, "username_input").send_keys(user)
    driver.find_element(By.ID, "password_input").send_keys(password)
    driver.find_element(By.ID, "login_submit").click()


def logged_in(driver: Any) -> bool:
    """True once the hub let us past the login page."""
    return "/hub/login" not in driver.current_url


def login_error(driver: Any) -> str:
    """The login page's error message after a refused login ('' if none shown)."""
    found = driver.find_elements(By.CSS_SELECTOR, ".login_error, .alert-danger")
    return " ".join(e.text for e in found)


def menu_choices(driver: Any) -> dict[str, str]:
    """value -> label of the spawn form's image menu."""
    select = wait(driver, ec.presence_of_element_located((By.NAME, "image")), 60, "the image menu")
    return {o.get_attribute("value"): o.text for o in Select(select).options}


def start_with(driver: Any, value: str) -> None:
    Select(driver.find_element(By.NAME, "image")).select_by_value(value)
    driver.find_element(By.CSS_SELECTOR, "form#spawn_form input[type=submit], "
                                         "form#spawn_form button[type=submit]").click()


LAUNCHER_NOTEBOOK = ".jp-LauncherCard[data-category='Notebook']"
LAB_SHELL = "#jp-main-dock-panel"


def wait_for_lab(driver: Any, lab_url: str, timeout: float = 180,
                 selector: str = LAUNCHER_NOTEBOOK) -> None:
    """JupyterLab is up: its launcher shows a notebook card (or `selector` is there).

    Starting a user container adds a veth interface on this host; Chromium then aborts the
    request in flight with ERR_NETWORK_CHANGED (its network change notifier). A person would
    reload; so do we, and only for that error.
    """
    deadline = time.monotonic() + timeout
    while True:
        cards = driver.find_elements(By.CSS_SELECTOR, selector)
        if cards:
            return
        if "ERR_NETWORK_CHANGED" in page_text(driver):
            driver.get(lab_url)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out ({timeout:.0f}s) waiting for JupyterLab at "
                                 f"{driver.current_url}\n--- page ---\n{page_text(driver)}")
        time.sleep(1)


def run_in_new_notebook(driver: Any, code: str, expect: str, timeout: float = 120) -> str:
    """Opens a notebook from the launcher, types `code` into the first cell, runs it with
    Shift+Enter and waits until its output contains `expect`. Returns the output text.

    Keystrokes sent before the kernel's websocket is up are lost by JupyterLab (the cell stays
    "[ ]"), so it waits for the status bar's "| Idle". JupyterLab may still re-render the cell
    (a stale element, or typed text gone), so each attempt finds the first cell afresh, replaces
    its whole text and runs it again: `code` must be idempotent.
    """
    driver.find_element(By.CSS_SELECTOR, LAUNCHER_NOTEBOOK).click()
    cell = (By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
    wait(driver, ec.element_to_be_clickable(cell), timeout, "a notebook cell")
    wait(driver, lambda d: "| Idle" in page_text(d), timeout, "an idle kernel")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            first = driver.find_elements(*cell)[0]
            first.click()
            first.send_keys(Keys.CONTROL, "a")
            first.send_keys(code)
            first.send_keys(Keys.SHIFT, Keys.ENTER)
        except (*LOOK_AGAIN, IndexError):
            time.sleep(0.5)
            continue
        attempt_end = min(deadline, time.monotonic() + 20)
        while time.monotonic() < attempt_end:
            try:
                text = "\n".join(o.text for o in driver.find_elements(
                    By.CSS_SELECTOR, ".jp-OutputArea-output"))
            except StaleElementReferenceException:
                text = ""
            if expect in text:
                return text
            time.sleep(0.5)
    raise AssertionError(f"cell output never showed {expect!r}\n--- page ---\n{page_text(driver)}")
