// Small behaviours htmx does not cover: copy buttons, confirming forms, pausing
// the live list, relative times, the live-connection indicator and the selected row.
(function () {
  "use strict";

  // Screen readers hear what changed out of sight through one polite live region.
  // Emptied first, so the same message twice is said twice.
  function announce(message) {
    var region = document.getElementById("announce");
    if (!region) return;
    region.textContent = "";
    clearTimeout(announce.timer);
    announce.timer = setTimeout(function () { region.textContent = message; }, 100);
  }

  function copyText(text, button) {
    function done() {
      var label = button.textContent;
      announce("Copied");
      button.classList.add("copied");
      button.textContent = "Copied";
      setTimeout(function () {
        button.classList.remove("copied");
        button.textContent = label;
      }, 1200);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }

  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.dataset.copy;
    if (text === undefined && button.dataset.copyFrom) {
      var source = document.querySelector(button.dataset.copyFrom);
      text = source ? source.textContent : "";
    }
    copyText(text || "", button);
  });

  // A form that undoes something (revoking a token, removing a secret) asks
  // first with its data-confirm; declined, it is not sent. Without scripts it
  // posts at once, as it always did. (Forms htmx sends use hx-confirm instead.)
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !event.defaultPrevented && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function paused() {
    var box = document.getElementById("pause");
    return !!(box && box.checked);
  }

  // The status is a live region: the same text is not written again (a stream
  // reconnects every minute), so only real changes are announced.
  function setStatus(state) {
    var status = document.getElementById("live-status");
    if (!status || status.textContent === state) return;
    status.classList.remove("paused", "offline");
    if (state !== "live") status.classList.add(state);
    status.textContent = state;
  }

  // Filtered URLs name only the filters in use (no ?q=&event=&...).
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "filters") return;
    var data = event.detail.formData;
    Array.from(data.keys()).forEach(function (name) {
      if (data.get(name) === "") data.delete(name);
    });
  });

  var deleting = {};  // ids of captures this page asked to delete

  // Captures were removed elsewhere: the page says which rows it shows, and
  // which capture it has open, and is answered with those that are gone.
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "gone") return;
    // Rows this page is deleting itself are left out: its own answer removes them.
    var shown = Array.from(document.querySelectorAll("#rows .capture-row"), function (row) {
      return row.dataset.captureId;
    }).filter(function (id) { return !deleting[id]; });
    event.detail.formData.set("shown", shown.join(","));
    var open = document.querySelector("#detail .capture-detail");
    if (open && !deleting[open.dataset.captureId]) {
      event.detail.formData.set("open", open.dataset.captureId);
    }
  });

  // While paused, the live fetch of new rows and the check for removed ones are
  // skipped; the cursor stays put, so resuming fetches everything that arrived
  // meanwhile, and checks the rows once.
  document.addEventListener("htmx:confirm", function (event) {
    if ((event.target.id === "live" || event.target.id === "gone") && paused()) {
      event.preventDefault();
    }
    if (event.defaultPrevented) return;
    if (listsLoading > 0 && event.target.id === "live") event.preventDefault();
    else if (liveAsked && event.target.id === "live") {
      // htmx would queue it on this element, which the answer on its way
      // replaces (and the queued fetch with it): fetched after that answer.
      liveAgain = true;
      event.preventDefault();
    }
    if (listsLoading > 0 && event.target.id === "gone") {
      goneAgain = true;  // asked once the new list is in, with its filters
      event.preventDefault();
    }
  });

  // A filter change replaces the list, its live cursor (#live) with it. The
  // answer to a live fetch still on its way belongs to the old list: it would
  // put the old filters' cursor back, so it is dropped, and no live fetch
  // starts until the last list asked for is in; its cursor then fetches
  // whatever arrived meanwhile. Filter changes can overlap (a link, then the
  // select): a list that lands while another is still coming is held too.
  var listsLoading = 0;
  // The check for removed rows sends the filters (hx-include) and may answer
  // with a new list: one asked before a filter change is dropped, and asked
  // again once the new list is in.
  var goneAsked = null;
  var goneStale = null;
  var goneAgain = false;
  // The live fetch on its way (its element and request), and whether another
  // was asked for meanwhile.
  var liveAsked = null;
  var liveAgain = false;
  function replacesList(event) {
    return !!(event.detail.target && event.detail.target.id === "capture-list");
  }
  function dropAnswer(event) { event.preventDefault(); }
  // On the element itself: once replaced, its events no longer reach the document.
  function holdLive() {
    var live = document.getElementById("live");
    if (live) live.addEventListener("htmx:beforeOnLoad", dropAnswer);
  }
  function catchUp() {
    var live = document.getElementById("live");
    liveAgain = false;
    if (live) {
      live.removeEventListener("htmx:beforeOnLoad", dropAnswer);
      htmx.trigger(live, "sse:capture");
    }
    var gone = document.getElementById("gone");
    if (goneAgain && gone) {
      goneAgain = false;
      htmx.trigger(gone, "sse:removed");
    }
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "live") {
      var asked = { elt: event.detail.elt, xhr: event.detail.xhr };
      liveAsked = asked;
      asked.xhr.addEventListener("loadend", function () {
        if (liveAsked === asked) liveAsked = null;
        // Answered, its new cursor asks again once it is in (htmx:load); not
        // answered, this one asks again now.
        if (liveAgain && !(asked.xhr.status >= 200 && asked.xhr.status < 300)) catchUp();
      });
    }
    if (event.detail.elt && event.detail.elt.id === "gone") goneAsked = event.detail.xhr;
    if (!replacesList(event)) return;
    listsLoading += 1;
    holdLive();
    if (goneAsked && goneAsked.readyState !== XMLHttpRequest.DONE) goneStale = goneAsked;
    // Counted off on the request itself: a link or form that asked may be gone
    // by then (a list before it replaced it), and its events with it.
    var xhr = event.detail.xhr;
    var target = event.detail.target;
    xhr.addEventListener("loadend", function () {
      listsLoading = Math.max(0, listsLoading - 1);
      // No list came (an error, no answer), or it went to a list no longer on
      // the page (back to a page from history meanwhile): the one on the page
      // stays, and its cursor goes on. A list that came in is caught up once
      // it has settled.
      var ok = xhr.status >= 200 && xhr.status < 400 && xhr.status !== 204;
      if (!(ok && target.isConnected) && listsLoading === 0) catchUp();
    });
  });
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    if (!goneStale || event.detail.xhr !== goneStale) return;
    goneStale = null;
    goneAgain = true;
    event.preventDefault();
    if (listsLoading === 0) catchUp();  // the new list came first
  });
  document.addEventListener("htmx:load", function (event) {
    if (event.target.id === "live" && liveAgain && !liveAsked && listsLoading === 0) catchUp();
  });
  // Back or Forward restores a page from history: the answer to a live fetch
  // the page before it asked for would put that page's cursor in this one.
  document.addEventListener("htmx:historyRestore", function () {
    if (liveAsked) liveAsked.elt.addEventListener("htmx:beforeOnLoad", dropAnswer);
    liveAsked = null;
    if (listsLoading === 0) catchUp();
  });
  // Also a list the server sends in place of another answer (deletions elsewhere).
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (replacesList(event)) holdLive();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target.id !== "capture-list") return;
    if (listsLoading === 0) catchUp();
    else holdLive();
  });

  document.addEventListener("change", function (event) {
    if (event.target.id !== "pause") return;
    setStatus(paused() ? "paused" : "live");
    if (!paused()) {
      var live = document.getElementById("live");
      if (live) htmx.trigger(live, "sse:capture");
      var gone = document.getElementById("gone");
      if (gone) htmx.trigger(gone, "sse:removed");
    }
  });

  // The server ends each stream after a minute or so and the browser reconnects
  // within a second (retry:), which also fires an error: only a reconnection
  // that takes longer than that is shown as offline.
  var offlineTimer = null;
  // A stream the server cannot serve now (its database away, say) opens, says
  // `unavailable` at once and ends; the browser asks again after the delay
  // the server names. Offline until a stream opens and says no such thing.
  var unavailable = false;
  var liveTimer = null;
  document.addEventListener("htmx:sseOpen", function () {
    clearTimeout(offlineTimer);
    offlineTimer = null;
    clearTimeout(liveTimer);
    if (!unavailable) {
      setStatus(paused() ? "paused" : "live");
      return;
    }
    liveTimer = setTimeout(function () {
      unavailable = false;
      setStatus(paused() ? "paused" : "live");
    }, 1000);
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.target.id !== "unavailable") return;
    unavailable = true;
    clearTimeout(liveTimer);
    setStatus("offline");
  });
  document.addEventListener("htmx:sseError", function () {
    if (offlineTimer === null) {
      offlineTimer = setTimeout(function () { setStatus("offline"); }, 3000);
    }
  });

  // A failed fragment request says so instead of leaving the page silently stale.
  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { box.hidden = true; }, 5000);
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = xhr.status + " " + xhr.statusText;
    try { message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* HTML answer */ }
    flash("Request failed: " + message);
  });
  document.addEventListener("htmx:sendError", function () { flash("The server cannot be reached."); });

  function ago(iso) {
    var seconds = Math.floor((Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 5) return "just now";
    if (seconds >= 86400) return Math.floor(seconds / 86400) + "d ago";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + "h ago";
    if (seconds >= 60) return Math.floor(seconds / 60) + "m ago";
    return seconds + "s ago";
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      el.textContent = ago(el.getAttribute("datetime"));
    });
    document.querySelectorAll("[data-ago-of]").forEach(function (el) {
      el.textContent = ago(el.getAttribute("data-ago-of"));
    });
  }
  setInterval(refreshTimes, 10000);

  function markSelected() {
    var detail = document.querySelector(".capture-detail");
    var id = detail ? detail.dataset.captureId : null;
    document.querySelectorAll(".capture-row").forEach(function (row) {
      var selected = row.dataset.captureId === id;
      row.classList.toggle("selected", selected);
      if (selected) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    });
  }
  document.addEventListener("htmx:afterSettle", markSelected);

  // New captures arriving live are announced, summed, at most every 5 seconds.
  var rowsBefore = 0;
  var arrived = 0;
  var arrivalTimer = null;
  var lastArrival = 0;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "rows") {
      rowsBefore = document.querySelectorAll("#rows .capture-row").length;
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id !== "rows") return;
    var added = document.querySelectorAll("#rows .capture-row").length - rowsBefore;
    if (added > 0) arrived += added;
    if (arrived === 0 || arrivalTimer !== null) return;
    arrivalTimer = setTimeout(function () {
      announce(arrived === 1 ? "1 new capture" : arrived + " new captures");
      arrived = 0;
      arrivalTimer = null;
      lastArrival = Date.now();
    }, Math.max(0, lastArrival + 5000 - Date.now()));
  });

  // A filter's result: how many captures it shows (a full page has more to load), or why none.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target.id !== "capture-list") return;
    var shown = document.querySelectorAll("#rows .capture-row").length;
    var empty = document.getElementById("empty-list");
    // The list started again after deletions elsewhere: said with them.
    var said = isGone(event) && goneSaid ? goneSaid + " " : "";
    if (!shown && empty) {
      announce(said + empty.textContent.replace(/\s+/g, " ").trim());
    } else if (document.querySelector("#rows .load-more")) {
      announce(said + shown + " or more captures shown");
    } else {
      announce(said + (shown === 1 ? "1 capture shown" : shown + " captures shown"));
    }
  });

  // When the detail pane sits below the list (narrow screens), bring its top
  // into view. At once, not smoothly: a smooth scroll passes the list's "load
  // older" row, whose loading would push the detail further down.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id !== "detail") return;
    // On wide screens the pane scrolls on its own: a new capture shows from its top.
    event.target.scrollTop = 0;
    var box = event.target.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight / 2) {
      event.target.scrollIntoView({ block: "start" });
    }
  });
  document.addEventListener("DOMContentLoaded", markSelected);

  // Keyboard users land where they are going: in a capture they opened from the
  // list, and on the next row after deleting one (not back at the page's top).
  var focusAfterDelete = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!event.detail.elt.hasAttribute("hx-delete")) return;
    var detail = document.querySelector("#detail .capture-detail");
    if (detail) deleting[detail.dataset.captureId] = true;
    var row = document.querySelector(".capture-row.selected");
    var next = row && (row.nextElementSibling || row.previousElementSibling);
    focusAfterDelete = next ? next.id : null;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target.id !== "detail") return;
    var heading = event.target.querySelector(".capture-detail h2");
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (trigger && trigger.hasAttribute("hx-delete")) {
      var said = event.target.querySelector("[role=status]");
      if (said) announce(said.textContent);
    }
    if (heading && trigger && trigger.classList.contains("row-link")) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    } else if (!heading && focusAfterDelete) {
      var link = document.querySelector("#" + focusAfterDelete + " .row-link");
      if (link) link.focus();
      focusAfterDelete = null;
    }
  });

  // Deletions that arrive through the live feed (another page, the API, a purge)
  // land like those made here: focus that was in a removed row, or in the
  // removed capture's detail, goes to the next row (or the previous, or the
  // list), and the deletion is said through #announce.
  var goneBefore = null;
  var goneSaid = "";
  function isGone(event) {
    var config = event.detail.requestConfig;
    return !!(config && config.elt && config.elt.id === "gone");
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isGone(event)) return;
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("#rows .capture-row") : null;
    var detail = document.querySelector("#detail .capture-detail");
    var inDetail = detail && detail.contains(active);
    goneBefore = {
      active: active,
      rows: Array.from(document.querySelectorAll("#rows .capture-row"), function (r) {
        return r.dataset.captureId;
      }),
      from: row ? row.dataset.captureId : (inDetail ? detail.dataset.captureId : null),
      open: detail ? detail.dataset.captureId : null,
    };
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.target.id !== "gone" || !goneBefore) return;
    var before = goneBefore;
    goneBefore = null;
    if (!event.detail.successful) return;
    function shown(id) { return !!document.getElementById("capture-" + id); }
    var removed = before.rows.filter(function (id) { return !shown(id); });
    var open = document.querySelector("#detail .capture-detail");
    if (before.open && !(open && open.dataset.captureId === before.open) &&
        removed.indexOf(before.open) < 0) {
      removed.push(before.open);
    }
    var focusLost = !before.active || !before.active.isConnected ||
      document.activeElement === document.body || document.activeElement === null;
    if (before.from && focusLost && removed.indexOf(before.from) >= 0) {
      var at = before.rows.indexOf(before.from);
      var next = null;
      if (at >= 0) {
        next = before.rows.slice(at + 1).filter(shown)[0] ||
          before.rows.slice(0, at).filter(shown).pop() || null;
      }
      var link = next && document.querySelector("#capture-" + next + " .row-link");
      if (link) link.focus();
      else document.getElementById("capture-list").focus();
    }
    goneSaid = "";
    if (!removed.length) return;
    goneSaid = removed.length === 1 ? "Capture #" + removed[0] + " was deleted." :
      removed.length + " captures were deleted.";
    announce(goneSaid);
  });

  // Event types on a narrow screen (a phone, a laptop zoomed in): folded at
  // first, so the captures come first. The list is rendered open, and re-rendered
  // on every live update and filter: the state chosen is kept across those swaps.
  var narrow = window.matchMedia("(max-width: 760px)");
  var typesOpen = !narrow.matches;
  function typesFold(root) {
    return root && root.querySelector ? root.querySelector("details.types-fold") : null;
  }
  (function () {
    var fold = typesFold(document);
    if (fold) fold.open = typesOpen;
  })();
  document.addEventListener("toggle", function (event) {
    if (event.target.classList && event.target.classList.contains("types-fold")) {
      typesOpen = event.target.open;
    }
  }, true);
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "event-types") return;
    var fold = typesFold(event.detail.fragment);
    if (fold) fold.open = typesOpen;
  });
  // Widened (or zoomed out) past the breakpoint: the sidebar shows open again.
  narrow.addEventListener("change", function () {
    var fold = typesFold(document);
    if (!narrow.matches && fold) fold.open = typesOpen = true;
  });

  // A capture's own URL opened on a narrow screen: its detail, not the list, first.
  document.addEventListener("DOMContentLoaded", function () {
    var detail = document.querySelector("#detail .capture-detail");
    if (detail && detail.getBoundingClientRect().top > window.innerHeight) {
      detail.scrollIntoView({ block: "start" });
    }
  });

  // A form the server refused: point at the field it names, keep what was typed.
  // The form just sent comes first, before a note about a stale saved setting.
  document.addEventListener("DOMContentLoaded", function () {
    var error = document.querySelector(".form-error[data-field]:not(.stale)") ||
      document.querySelector(".form-error[data-field]");
    if (!error) return;
    var form = error.closest("form") || document;
    var field = form.querySelector('[name="' + error.dataset.field + '"]');
    if (!field) return;
    field.setAttribute("aria-invalid", "true");
    // Said with the field's hint (the rule it breaks), if it has one.
    var id = error.id || (error.id = "form-error");
    var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(id) < 0) described.unshift(id);
    field.setAttribute("aria-describedby", described.join(" "));
    field.focus();
  });
})();
