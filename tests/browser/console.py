#!/usr/bin/env python3
"""console.py - the console in a real browser (Chromium through Selenium, JavaScript
turned off: every flow must work without it; the live updates, which need it, and axe-core
run in a browser with it on). Prints TAP lines (numbered from $TAP_START);
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


def browser(javascript=False):
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1600", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "profile.managed_default_content_settings.javascript": 1 if javascript else 2,
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
    # person search by email, as legal or an auditor looks someone up from their letter
    driver.get(BASE + "/find")
    shot(driver, "find")
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/find']")
    form.find_element(By.CSS_SELECTOR, "select[name='by'] option[value='email']").click()
    form.find_element(By.NAME, "value").send_keys("mary@EXAMPLE.org")
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(driver, 20).until(lambda d: "/find?" in d.current_url)
    shot(driver, "find-results")
    found = driver.find_elements(By.PARTIAL_LINK_TEXT, "m m1")
    ok(len(found) == 1, "auditor: person search by email finds m1",
       driver.find_element(By.TAG_NAME, "main").text[:300])
    if found:
        found[0].click()
        arrived(driver, "/person")
        shot(driver, "person-found")
        main = driver.find_element(By.TAG_NAME, "main").text
        ok("verified" in main and "DIFFERS" not in main,
           "auditor: the person's proof says content verified", main[:400])
        sent = driver.find_elements(By.PARTIAL_LINK_TEXT, "as text")
        ok(len(sent) >= 1, "auditor: the person page links the email as sent")
        if sent:
            sent[0].click()
            arrived(driver, "/person/content")
            shot(driver, "notice-as-sent")
            text = driver.find_element(By.TAG_NAME, "main").text
            ok("Subject:" in text and "Mary Mailed" in text,
               "auditor: the email as sent is shown as text", text[:300])
    driver.get(BASE + "/campaign?name=m")
    shot(driver, "campaign-progress")
    ok(len(driver.find_elements(By.CSS_SELECTOR, "table.chart progress")) >= 1,
       "auditor: the campaign page has its per-day chart")
    driver.get(BASE + "/audit/unreached?campaign=c")
    shot(driver, "unreached")
    driver.get(BASE + "/audit/regulators?campaign=c")
    shot(driver, "regulators")
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


LIVE_READY = ("//div[@id='live']/dl/dt[.='by_state']/following-sibling::dd[1]"
              "/dl/dt[.='ready']/following-sibling::dd[1]")


def api_requests(driver, route):
    """The requests of the API route (e.g. /api/v1/campaign?name=c) since the last look."""
    return [u for u in requested_urls(driver) if u.startswith(BASE + route)]


def live_flow(driver, external):
    """While crier run sends campaign c, its page counts down without a reload (live.js)."""
    login(driver, os.environ["OPERATOR"])
    driver.get(BASE + "/campaign?name=c")
    shot(driver, "campaign-live")
    before = driver.find_element(By.XPATH, LIVE_READY).text
    # a reload would forget this; the script's redraws keep the page (and so the marker)
    driver.execute_script("window.crierNoReload = 1;")
    try:
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.XPATH, LIVE_READY).text != before)
        after = driver.find_element(By.XPATH, LIVE_READY).text
    except Exception as e:
        after = repr(e)
    ok(after != before and after.isdigit(),
       "live: campaign c's ready count changed on the page without a reload",
       f"{before} -> {after}")
    ok(driver.execute_script("return window.crierNoReload === 1 && "
                             "performance.getEntriesByType('navigation').length === 1"),
       "live: the page was not reloaded (the marker survived)")
    ok("Updated at" in driver.find_element(By.CLASS_NAME, "live-note").text,
       "live: the page says when it was updated")
    urls = requested_urls(driver)
    ok(BASE + "/static/live.js" in urls and any(u.startswith(BASE + "/api/v1/campaign?name=c")
                                                 for u in urls),
       "live: the script came from crier, and polled crier's API", urls)
    external += [u for u in urls if not u.startswith(BASE)]
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    ok(not errors, "live: no error in the browser (no CSP violation)", errors)


def live_stops_flow(driver, external):
    """The script stops polling while the tab is hidden, and for a finished campaign."""
    login(driver, os.environ["AUDITOR"])
    driver.get(BASE + "/campaign?name=c")
    # hidden, as when the person switches tabs: the page's visibilitychange handler runs
    driver.execute_script("Object.defineProperty(document, 'visibilityState', "
                          "{configurable: true, get: function () { return 'hidden'; }});"
                          "document.dispatchEvent(new Event('visibilitychange'));")
    api_requests(driver, "/api/v1/campaign")  # what came before it was hidden
    time.sleep(12)
    hidden = api_requests(driver, "/api/v1/campaign")
    ok(not hidden, "live: no request while the tab is hidden (12 s)", hidden)
    driver.execute_script("Object.defineProperty(document, 'visibilityState', "
                          "{configurable: true, get: function () { return 'visible'; }});"
                          "document.dispatchEvent(new Event('visibilitychange'));")
    time.sleep(1)
    shown = api_requests(driver, "/api/v1/campaign")
    ok(len(shown) >= 1, "live: shown again, it fetches at once", shown)
    # campaign m is completed: one fetch finds it finished, then nothing more
    driver.get(BASE + "/campaign?name=m")
    api_requests(driver, "/api/v1/campaign")
    time.sleep(12)
    finished = api_requests(driver, "/api/v1/campaign?name=m")
    ok(len(finished) == 1, "live: a finished campaign is fetched once, then no more (12 s)",
       finished)
    note = driver.find_element(By.CLASS_NAME, "live-note").text
    ok(note.startswith("Finished"), "live: and the page says updates stopped", note)
    driver.get(BASE + "/campaigns")
    try:
        WebDriverWait(driver, 15).until(
            lambda d: "Updated at" in d.find_element(By.CLASS_NAME, "live-note").text)
    except Exception:
        pass
    region = driver.find_element(By.ID, "live")
    running = [h.text for h in region.find_elements(By.CSS_SELECTOR, "section.running h3")]
    ok("Updated at" in driver.find_element(By.CLASS_NAME, "live-note").text and
       len(region.find_elements(By.CSS_SELECTOR, "ul.links a[href='/campaign?name=c']")) == 1 and
       running == ["c (running)"] and
       len(region.find_elements(By.CSS_SELECTOR, "section.running table.counts")) == 1 and
       len(region.find_elements(By.CSS_SELECTOR, "table:not(.counts)")) == 1,
       "live: the campaigns page is redrawn from the API: links, the running campaign's "
       "counts, the list", region.text[:400])
    shot(driver, "campaigns-live")
    source = open(os.environ["AXE"]).read() if os.environ.get("AXE") else None
    if source is None:
        count_skip("axe-core on the redrawn campaigns page: not available")
    else:
        report = axe_violations(driver, source)
        ok(not report, "axe: the campaigns page as live.js redrew it has no serious or "
           "critical violation", report)
    external += [u for u in requested_urls(driver) if not u.startswith(BASE)]
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    ok(not errors, "live: no error in the browser on these pages", errors)


# The pages each role sees, checked by axe-core. (The hold's own page is found by link.)
AXE_PAGES = {
    "LEGAL": ["/campaigns", "/holds?campaign=c", "HOLD", "/find"],
    "OPERATOR": ["/campaign?name=c", "/batches?campaign=c"],
    "AUDITOR": ["/find?by=email&value=mary%40example.org", "/person?campaign=m&ref=m1",
                "/person?campaign=c&ref=x2", "/audit?campaign=c", "/audit/unreached?campaign=c",
                "/audit/regulators?campaign=c", "/campaign?name=m", "/batches?campaign=c"],
}


def axe_violations(driver, source):
    """axe-core's serious and critical violations on the page now shown. The engine goes in
    over the DevTools connection (the page's CSP allows no script but crier's own file)."""
    driver.execute_cdp_cmd("Runtime.evaluate", {"expression": source})
    result = driver.execute_cdp_cmd("Runtime.evaluate", {
        "expression": "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify("
                      "r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')"
                      ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html)}))))",
        "awaitPromise": True, "returnByValue": True, "timeout": 120000})
    value = result.get("result", {}).get("value")
    if value is None:
        return [{"id": "axe did not run", "detail": str(result)[:300]}]
    return json.loads(value)


def accessibility_flow(driver, external):
    """axe-core on every page, in each role. This browser runs JavaScript (axe is a script,
    handed over DevTools: the CSP allows only crier's own live.js, which runs here too, so
    the campaign pages are checked as they are redrawn)."""
    source = open(os.environ["AXE"]).read() if os.environ.get("AXE") else None
    if source is None:
        count_skip("axe-core: not available (npm missing?)")
        return
    # the check can fail: a planted page with an image without text and an unlabelled field
    driver.get("data:text/html,<!DOCTYPE html><html lang=en><title>t</title><main>"
               "<img src=x.png><input name=q></main></html>")
    planted = {v["id"] for v in axe_violations(driver, source)}
    ok({"image-alt", "label"} <= planted, "axe finds the violations planted in a test page",
       planted)
    driver.get(BASE + "/login")
    report = axe_violations(driver, source)
    ok(not report, "axe: /login has no serious or critical violation", report)
    for role, pages in AXE_PAGES.items():
        login(driver, os.environ[role])
        for page in pages:
            if page == "HOLD":
                driver.get(BASE + "/holds?campaign=c")
                links = driver.find_elements(By.CSS_SELECTOR, "ul.links a")
                if not links:
                    ok(False, "axe: a hold's page to check")
                    continue
                links[-1].click()
                arrived(driver, "/hold")
                page = "/hold"
            else:
                driver.get(BASE + page)
            report = axe_violations(driver, source)
            ok(not report, f"axe ({role.lower()}): {page} has no serious or critical violation",
               report)
        external += [u for u in requested_urls(driver) if not u.startswith(BASE)]
        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        arrived(driver, "/login")


def count_skip(description):
    global count
    count += 1
    print(f"ok {count} - {description} # SKIP")
    sys.stdout.flush()


def main():
    external = []
    scripted = (live_flow, accessibility_flow, live_stops_flow)
    for flow in (live_flow, legal_flow, operator_flow, auditor_flow, accessibility_flow,
                 live_stops_flow):
        driver = browser(javascript=flow in scripted)
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
