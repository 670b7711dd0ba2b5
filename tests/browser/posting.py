#!/usr/bin/env python3
"""posting.py PAGE - the substitute-notice posting (crier substitute write's posting.html)
in headless Chromium through Selenium. Prints TAP lines numbered from $TAP_START, then
"TAP_COUNT N"; tests/integration/substitute.sh runs it.

The page must stand alone: the browser requests nothing but the page itself (no font,
stylesheet, script or image from anywhere) and logs no error. It must be readable: a
language, a title, one h1 and the headings of the notice in order, the toll-free number
(HIPAA) as text, no horizontal scrolling on a phone-sized window. A screenshot of each
window size goes to $SHOTS.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

page = os.path.abspath(sys.argv[1])
count = int(os.environ.get("TAP_START", "0"))


def ok(cond, description, detail=""):
    global count
    count += 1
    print(("ok" if cond else "not ok") + f" {count} - {description}")
    if not cond and detail:
        print("#   " + str(detail)[:400].replace("\n", "\n#   "))
    sys.stdout.flush()


options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    shots = os.environ.get("SHOTS")
    for name, width, height in (("desktop", 1200, 1600), ("phone", 375, 800)):
        driver.set_window_size(width, height)
        driver.get("file://" + page)
        if shots:
            os.makedirs(shots, exist_ok=True)
            path = os.path.join(shots, f"substitute-posting-{name}.png")
            driver.save_screenshot(path)
            ok(os.path.getsize(path) > 1000, f"{name}: screenshot kept in {path}")
        scroll = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        ok(scroll <= 0, f"{name} ({width} px): no horizontal scrolling", f"{scroll} px too wide")

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    others = [u for u in urls if u != "file://" + page and not u.startswith("data:")]
    ok(urls and not others, "the browser requested nothing but the page itself", others or "no request seen")
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    ok(not errors, "no error in the browser's log", errors)

    ok(driver.title == "Notice of Data Breach", "the title says what it is", driver.title)
    lang = driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
    ok(lang == "en", "the page has a language (screen readers)", lang)
    h1 = driver.find_elements(By.TAG_NAME, "h1")
    ok(len(h1) == 1 and h1[0].text == "Notice of Data Breach", "one h1", [e.text for e in h1])
    h2 = [e.text for e in driver.find_elements(By.TAG_NAME, "h2")]
    wanted = ["What happened", "What information was involved", "What we are doing",
              "What you can do", "Who is concerned", "For more information"]
    ok(h2 == wanted, "the notice's headings, in order", h2)
    body = driver.find_element(By.TAG_NAME, "body").text
    phone = os.environ.get("TOLL_FREE", "")
    ok(phone and phone in body and "at least 90 days" in body,
       "the toll-free number and the 90 days are on the page as text", body[-300:])
    size = driver.execute_script(
        "return parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)")
    ok(size >= 16, "body text of at least 16 px", size)
finally:
    driver.quit()
print(f"TAP_COUNT {count}")
