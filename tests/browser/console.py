#!/usr/bin/env python3
"""console.py - the console in a real browser (Chromium through Selenium, JavaScript
turned off: every flow must work without it). Prints TAP lines (numbered from $TAP_START);
tests/integration/browser.sh sets up the database and the server and checks what the
flows left in the database.

Environment: BASE (http://127.0.0.1:PORT), LEGAL, AUDITOR, OPERATOR (login names, password
'pw'), DOCUMENT (a PDF to upload), DOWNLOADS (a directory), SHOTS (where screenshots go).
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["BASE"]
count = int(os.environ.get("TAP_START", "0"))
failed = 0


def ok(cond, description, detail=""):
    global count, failed
    count += 1
    print(("ok" if cond else "not ok") + f" {count} - {description}")
    if not cond:
        failed += 1
        if detail:
            print("#   " + str(detail)[:400].replace("\n", "\n#   "))
    sys.stdout.flush()


def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1600", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "profile.managed_default_content_settings.javascript": 2,
        "download.default_directory": os.environ["DOWNLOADS"],
        "download.prompt_for_download": False,
    })
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def requested_urls(driver):
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith("data:"):  # the browser's own icons (a date input's), no request
                urls.append(url)
    return urls


def shot(driver, name):
    directory = os.environ.get("SHOTS")
    if directory:
        os.makedirs(directory, exist_ok=True)
        driver.save_screenshot(os.path.join(directory, f"console-{name}.png"))


def login(driver, user):
    driver.get(BASE + "/login")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys("pw")
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    arrived(driver, "/campaigns")


def arrived(driver, path):
    """Wait (at most 20 s) until a click's navigation reached path."""
    try:
        WebDriverWait(driver, 20).until(lambda d: d.current_url.split("?")[0].endswith(path))
    except Exception:
        pass  # the caller's check says what went wrong


def legal_flow(driver, external):
    login(driver, os.environ["LEGAL"])
    ok(driver.current_url.endswith("/campaigns"), "legal: the login form leads to the campaigns",
       driver.current_url)
    shot(driver, "campaigns")
    driver.get(BASE + "/holds?campaign=c")
    shot(driver, "holds")
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/hold/place']")
    values = {"campaign": "c", "authority": "FBI Field Office", "official": "Agent Browser",
              "case": "BR-1", "reason": "notice would impede the investigation"}
    for name, value in values.items():
        element = form.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)
    form.find_element(By.NAME, "document").send_keys(os.environ["DOCUMENT"])
    form.find_element(By.CSS_SELECTOR, "button").click()
    arrived(driver, "/hold/place")
    WebDriverWait(driver, 60).until(lambda d: "placed" in d.page_source or "error" in d.page_source)
    body = driver.find_element(By.TAG_NAME, "body").text
    ok("placed on campaign c" in body, "legal: the page says the hold was placed", body[:300])
    shot(driver, "hold-placed")
    driver.get(BASE + "/holds?campaign=c")
    ok("Agent Browser" in driver.page_source, "legal: the holds page lists it")
    links = driver.find_elements(By.CSS_SELECTOR, "ul.links a")
    ok(len(links) >= 1, "legal: each hold links to its page")
    if links:
        links[-1].click()
        arrived(driver, "/hold")
        shot(driver, "hold")
        ok(len(driver.find_elements(By.CSS_SELECTOR, "form[action='/hold/lift']")) == 1,
           "legal: the hold's page has the lift form")
    external += [u for u in requested_urls(driver) if not u.startswith(BASE)]
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    arrived(driver, "/login")
    ok(driver.current_url.endswith("/login"), "legal: logout leads to the login form",
       driver.current_url + " " + driver.find_element(By.TAG_NAME, "body").text[:300])


def operator_flow(driver, external):
    login(driver, os.environ["OPERATOR"])
    driver.get(BASE + "/holds")
    ok(not driver.find_elements(By.CSS_SELECTOR, "form[action='/hold/place']"),
       "operator: no hold form")
    driver.get(BASE + "/campaign?name=c")
    shot(driver, "campaign")
    ok(len(driver.find_elements(By.CSS_SELECTOR, "form[action='/campaign/pause']")) == 1,
       "operator: the campaign page offers pause")
    driver.get(BASE + "/batches?campaign=c")
    shot(driver, "batches")
    external += [u for u in requested_urls(driver) if not u.startswith(BASE)]
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()


def auditor_flow(driver, external):
    login(driver, os.environ["AUDITOR"])
    driver.get(BASE + "/person")
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/person']")
    form.find_element(By.NAME, "campaign").send_keys("c")
    form.find_element(By.NAME, "ref").send_keys("x2")
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(driver, 20).until(lambda d: "ref=x2" in d.current_url)
    shot(driver, "person")
    hostile = "<img src=x onerror=alert(1)>"
    ok(hostile in driver.find_element(By.TAG_NAME, "main").text,
       "auditor: the hostile name is shown as text")
    ok(not driver.find_elements(By.CSS_SELECTOR, "main img"), "auditor: and made no <img>")
    driver.get(BASE + "/audit?campaign=c")
    shot(driver, "audit")
    ok("intact" in driver.page_source, "auditor: the audit page verifies the chain")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Download the export").click()
    target = os.path.join(os.environ["DOWNLOADS"], "crier-audit-c.jsonl")
    for _ in range(100):
        if os.path.exists(target):
            break
        time.sleep(0.1)
    ok(os.path.exists(target), "auditor: the export downloads", os.listdir(os.environ["DOWNLOADS"]))
    external += [u for u in requested_urls(driver) if not u.startswith(BASE)]
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    ok(not errors, "no page logged an error in the browser (CSP violations included)", errors)


def main():
    external = []
    for flow in (legal_flow, operator_flow, auditor_flow):
        driver = browser()
        try:
            flow(driver, external)
        except Exception as e:  # a broken flow is a failure, not a crash of the harness
            ok(False, f"{flow.__name__} ran to its end", repr(e))
        finally:
            driver.quit()
    ok(not external, "no page made a request to another host", external)
    print(f"TAP_COUNT {count}")
    return 1 if failed else 0


sys.exit(main())
