/*
 * live.js - live updates for the campaigns page and a campaign's page of crier serve.
 *
 * The pages are whole without it: the server renders everything, and a reload shows what
 * is new. This script only refreshes the page's region marked id="live": every few seconds
 * it fetches the JSON API the region names (data-api, this origin's /api/v1/..., with the
 * session cookie) and draws that JSON again as the server draws it (html_json in
 * engine/lib/html.c, progress_chart in engine/web/progress.c).
 *
 * It stops while the tab is hidden (and starts again when it is shown), when the campaign
 * is finished (or, on the campaigns page, every campaign is), and when the session ended.
 * SECURITY: every value from the API goes into the page as text (textContent), never as
 * markup; the console's Content-Security-Policy allows this file (script-src 'self') and
 * fetches of its own origin (connect-src 'self'), nothing inline, nothing elsewhere.
 */
(function () {
  "use strict";

  var EVERY_MS = 5000;
  var FINISHED = { completed: true, cancelled: true };
  var region = document.getElementById("live");
  if (!region || !window.fetch) {
    return;
  }
  var api = region.getAttribute("data-api");
  var kind = region.getAttribute("data-kind");
  var timer = null;
  var busy = false; /* a fetch is on its way: one at a time */
  var stopped = false;
  var note = document.createElement("p");
  note.className = "live-note";
  region.parentNode.insertBefore(note, region);

  /* el - an element with a class and text (both optional); text only ever as text */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  /* number - as the server's printf: integers whole, reals as %g (6 significant digits) */
  function number(value) {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }

  function scalar(value) {
    if (typeof value === "string") {
      return document.createTextNode(value);
    }
    if (typeof value === "number") {
      return document.createTextNode(number(value));
    }
    if (value === true || value === false) {
      return document.createTextNode(value ? "yes" : "no");
    }
    return el("span", "none", "\u2014");
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  /* alert rows: a lapsed hold, one past review, a broken chain (html.c's alert_row) */
  function alertRow(row) {
    return row.lapsed === true || row.past_review === true || row.broken === true;
  }

  function table(rows) {
    var keys = Object.keys(rows[0]);
    var t = el("table");
    var head = el("thead");
    var tr = el("tr");
    keys.forEach(function (key) {
      tr.appendChild(el("th", null, key));
    });
    head.appendChild(tr);
    t.appendChild(head);
    var body = el("tbody");
    rows.forEach(function (row) {
      var line = el("tr", alertRow(row) ? "alert" : null);
      keys.forEach(function (key) {
        var cell = el("td");
        cell.appendChild(render(row[key]));
        line.appendChild(cell);
      });
      body.appendChild(line);
    });
    t.appendChild(body);
    return t;
  }

  /* render - a JSON value as html_json() renders it */
  function render(value) {
    if (isObject(value)) {
      var dl = el("dl");
      Object.keys(value).forEach(function (key) {
        dl.appendChild(el("dt", null, key));
        var dd = el("dd");
        dd.appendChild(render(value[key]));
        dl.appendChild(dd);
      });
      return dl;
    }
    if (Array.isArray(value) && value.length === 0) {
      return el("span", "none", "none");
    }
    if (Array.isArray(value) && isObject(value[0])) {
      return table(value);
    }
    if (Array.isArray(value)) {
      var ul = el("ul");
      value.forEach(function (item) {
        var li = el("li");
        li.appendChild(render(item));
        ul.appendChild(li);
      });
      return ul;
    }
    return scalar(value);
  }

  /* progressSentence - progress.c's line: rate, what is left, the ETA */
  function progressSentence(p) {
    var text = Number(p.rate_per_minute || 0).toFixed(1) + " notices a minute (the last " +
      p.rate_seconds + " s); " + p.remaining + " to go; ";
    text += p.eta ? "done at about " + p.eta + " at this rate"
      : "no ETA (nothing moved in that window, or the campaign is not running)";
    return text + ".";
  }

  /* progress - progress.c's heading, line and per-day chart */
  function progress(p, parent) {
    if (!isObject(p)) {
      return;
    }
    parent.appendChild(el("h2", null, "Progress"));
    parent.appendChild(el("p", "progress", progressSentence(p)));
    var days = Array.isArray(p.per_day) ? p.per_day : [];
    if (days.length === 0) {
      return;
    }
    var most = 1;
    days.forEach(function (day) {
      most = Math.max(most, (day.sent || 0) + (day.undeliverable || 0));
    });
    var t = el("table", "chart");
    t.appendChild(el("caption", null, "Notices finished per day (UTC)"));
    var head = el("tr");
    ["day", "sent", "undeliverable", "chart"].forEach(function (name) {
      var th = el("th", null, name);
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    t.appendChild(head);
    days.forEach(function (day) {
      var done = (day.sent || 0) + (day.undeliverable || 0);
      var tr = el("tr");
      var th = el("th", null, day.day);
      th.setAttribute("scope", "row");
      tr.appendChild(th);
      tr.appendChild(el("td", null, day.sent));
      tr.appendChild(el("td", null, day.undeliverable));
      var bar = el("progress", null, done);
      bar.max = most;
      bar.value = done;
      bar.setAttribute("aria-label", "finished on " + day.day);
      var td = el("td");
      td.appendChild(bar);
      tr.appendChild(td);
      t.appendChild(tr);
    });
    parent.appendChild(t);
  }

  function headerCell(text, scope) {
    var th = el("th", null, text);
    th.setAttribute("scope", scope);
    return th;
  }

  /* stateTable - progress.c's: notices by state (rows) and channel (columns after "all") */
  function stateTable(status) {
    var channels = isObject(status.by_channel) ? status.by_channel : {};
    var names = Object.keys(channels);
    var t = el("table", "counts");
    t.appendChild(el("caption", null, "Notices by state and channel"));
    var head = el("tr");
    head.appendChild(headerCell("state", "col"));
    head.appendChild(headerCell("all", "col"));
    names.forEach(function (name) {
      head.appendChild(headerCell(name, "col"));
    });
    t.appendChild(head);
    Object.keys(status.by_state || {}).forEach(function (state) {
      var tr = el("tr");
      tr.appendChild(headerCell(state, "row"));
      tr.appendChild(el("td", null, status.by_state[state]));
      names.forEach(function (name) {
        tr.appendChild(el("td", null, channels[name][state] || 0));
      });
      t.appendChild(tr);
    });
    return t;
  }

  /* running - progress.c's progress_campaigns: each running or paused campaign */
  function running(statuses, parent) {
    if (statuses.length === 0) {
      return;
    }
    parent.appendChild(el("h2", null, "In progress"));
    statuses.forEach(function (status) {
      var section = el("section", "running");
      section.appendChild(el("h3", null, status.campaign + " (" + status.state + ")"));
      if (isObject(status.progress)) {
        section.appendChild(el("p", "progress", progressSentence(status.progress)));
      }
      section.appendChild(stateTable(status));
      parent.appendChild(section);
    });
  }

  /* campaignLinks - pages.c's links: each campaign's own page */
  function campaignLinks(rows, parent) {
    if (!Array.isArray(rows) || rows.length === 0) {
      return;
    }
    var ul = el("ul", "links");
    rows.forEach(function (row) {
      var a = el("a", null, "campaign " + row.name);
      a.href = "/campaign?name=" + encodeURIComponent(row.name);
      var li = el("li");
      li.appendChild(a);
      ul.appendChild(li);
    });
    parent.appendChild(ul);
  }

  /* draw - the region again, from the API's JSON (on the campaigns page, the list and the
   * running campaigns' statuses); true when nothing more will change */
  function draw(data, statuses) {
    var fresh = document.createDocumentFragment();
    var finished;
    if (kind === "campaigns") {
      campaignLinks(data, fresh);
      running(statuses, fresh);
      finished = Array.isArray(data) && data.every(function (c) {
        return FINISHED[c.state] === true;
      });
    } else {
      progress(data.progress, fresh);
      finished = FINISHED[data.state] === true;
    }
    fresh.appendChild(render(data));
    while (region.firstChild) {
      region.removeChild(region.firstChild);
    }
    region.appendChild(fresh);
    return finished;
  }

  function schedule() {
    busy = false;
    if (!stopped && timer === null && document.visibilityState !== "hidden") {
      timer = window.setTimeout(tick, EVERY_MS);
    }
  }

  function stop(why) {
    stopped = true;
    note.textContent = why;
  }

  /* get - a route's JSON (null when the session ended: polling stops) */
  function get(route) {
    return fetch(route, { credentials: "same-origin", cache: "no-store",
      headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          stop("The session ended: reload the page to log in again.");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      });
  }

  /* statusesOf - on the campaigns page, each running or paused campaign's status, one
   * request after another (a session answers one at a time); one that fails is left out */
  function statusesOf(list) {
    var statuses = [];
    var chain = Promise.resolve();
    (Array.isArray(list) ? list : []).forEach(function (c) {
      if (c.state !== "running" && c.state !== "paused") {
        return;
      }
      chain = chain.then(function () {
        return stopped ? null : get("/api/v1/campaign?name=" + encodeURIComponent(c.name));
      }).then(function (status) {
        if (isObject(status)) {
          statuses.push(status);
        }
      }, function () { /* left out; the list still shows it */ });
    });
    return chain.then(function () {
      return statuses;
    });
  }

  function tick() {
    timer = null;
    busy = true;
    var list = null;
    get(api)
      .then(function (data) {
        list = data;
        return data !== null && kind === "campaigns" ? statusesOf(data) : [];
      })
      .then(function (statuses) {
        if (list === null || stopped) {
          return;
        }
        var when = new Date().toLocaleTimeString();
        if (draw(list, statuses)) {
          stop("Finished: updates stopped (as of " + when + ").");
        } else {
          note.textContent = "Updated at " + when + " (every " + EVERY_MS / 1000 + " s).";
        }
      })
      .catch(function (error) {
        note.textContent = "The last update failed (" + error.message + "); trying again.";
      })
      .then(schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      window.clearTimeout(timer);
      timer = null;
    } else if (!stopped && timer === null && !busy) {
      tick();
    }
  });
  schedule();
}());
