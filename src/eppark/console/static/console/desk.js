/* EP Park agent desk (新版智能客服, manual 2.3.2): calls pushed over a WebSocket, actions as
 * HTTP POSTs with CSRF. No polling: the server pushes calls, the robot's screen and the
 * held-up list over /ws/console/; the page re-renders from the "hello" after a reconnect.
 *
 * Stable element ids / data-testid (for the browser tests):
 *   #desk [data-testid=desk]             the page root; data-connected="1" once the socket is up
 *   #desk-error, #desk-message           the last refusal (words) / the last confirmation
 *   #call-tabs                           tabs: #tab-home, then .call-tab[data-call-id] per call
 *                                        (data-testid="call-tab-<id>"; .taken when another agent has it)
 *   #desk-home                           idle home: #seat-form, #seat-input (坐席号), #seat-save,
 *                                        #seat-current; #board (#board-rows > tr.board-row
 *                                        [data-gate-id][data-visit-id], data-testid="board-row",
 *                                        .board-waited, button.callout-btn 呼叫 data-testid
 *                                        "callout-<gate id>"), #board-empty, #no-calls
 *                                        #lot-search (搜索车场) > #lot-results > .lot-card[data-lot-id]
 *                                        ("lot-card-<id>": 空余车位, visitors, fee rule, contact)
 *   #call-panel [data-call-id]           the selected call
 *     #ov-number #ov-robot #ov-lot #ov-gate #ov-state #ov-taken, #take-btn
 *     #scene-gate #scene-car #scene-env (img inside when there is a photo), #capture-scene-btn
 *     #mirror [data-kind][data-band]: #mirror-band, #mirror-display, #mirror-voice
 *     #plate-form #plate-input (车牌号) #query-btn (查询)
 *     #veh-plate #veh-pass #veh-valid #veh-expired #veh-entered #veh-duration #veh-due #veh-reason
 *     #act-open #act-send_to_display #act-quick_pay #act-visitor_release #act-abnormal_open
 *     #act-close  (enabled only when allowed)
 *     #fuzzy: #fuzzy-notice, #fuzzy-list > li.candidate[data-stay-id] (data-testid
 *             "candidate-<stay id>") with button.confirm-btn 确认为该车辆 ("confirm-<stay id>")
 *     #visitor-dialog: #visitor-phone (手机号) #visitor-reason (原因) #visitor-submit, #visitor-error
 *     #abnormal-dialog: #abnormal-reason (开闸原因) #abnormal-note (备注) #abnormal-evidence
 *             (exits only) #capture-id-btn #abnormal-capture-scene, checkboxes
 *             input[data-testid=pick-id-<photo id>] / pick-scene-<photo id>, #abnormal-submit,
 *             #abnormal-error (a refusal also shows inside the open dialog)
 */
(function () {
  "use strict";

  var root = document.getElementById("desk");
  if (!root) return;
  var strings = JSON.parse(document.getElementById("live-strings").textContent || "{}");
  var hello = JSON.parse(document.getElementById("desk-hello").textContent || "{}");
  var csrf = (root.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var statusBox = document.getElementById("live-status");

  var calls = {}; // id -> state
  var gone = {}; // id -> stamp of the state that took a call off the desk
  var order = []; // ids, newest first
  var selected = null; // call id or null (home)
  var board = [];
  var boardBase = 0; // Date.now() when the board arrived
  var seat = hello.seat || "";

  // A closed dialog's form is kept out of the page, so the only fields a label finds are
  // the open dialog's (访客登记放行's 原因 and 异常开闸's 开闸原因 never both answer to 原因).
  var parked = {}; // dialog id -> its form while the dialog is closed

  function $(id) {
    var found = document.getElementById(id);
    if (found) return found;
    for (var key in parked) {
      if (parked[key].id === id) return parked[key];
      var inner = parked[key].querySelector("#" + id);
      if (inner) return inner;
    }
    return null;
  }

  function park(dialog) {
    var form = dialog.querySelector("form");
    if (form) {
      parked[dialog.id] = form;
      dialog.removeChild(form);
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function fmt(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_m, key) {
      return values[key] === undefined ? "" : values[key];
    });
  }

  function safeUrl(url) {
    if (typeof url !== "string") return null;
    if (url.charAt(0) === "/" && url.charAt(1) !== "/") return url;
    if (/^https?:\/\//i.test(url)) return url;
    return null;
  }

  function setText(id, text) {
    var node = $(id);
    if (node) node.textContent = text === undefined || text === null || text === "" ? "—" : text;
  }

  // --- messages ---------------------------------------------------------------------------

  function showError(text) {
    var box = $("desk-error");
    box.textContent = text || "";
    box.hidden = !text;
    Array.prototype.forEach.call(document.querySelectorAll(".dialog-error"), function (inner) {
      var open = inner.closest("dialog").open;
      inner.textContent = open ? text || "" : "";
      inner.hidden = !(open && text);
    });
    if (text) $("desk-message").hidden = true;
  }

  function showMessage(text) {
    var box = $("desk-message");
    box.textContent = text || "";
    box.hidden = !text;
    if (text) $("desk-error").hidden = true;
  }

  // --- HTTP -------------------------------------------------------------------------------

  function post(url, body) {
    showError("");
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          showError(data.error || strings.error);
          return null;
        }
        if (data.call) upsert(data.call);
        if (data.message) showMessage(data.message);
        return data;
      });
    }).catch(function () {
      showError(strings.error);
      return null;
    });
  }

  function callUrl(id, action) {
    return root.dataset.callUrl + id + "/" + action + "/";
  }

  // --- state ------------------------------------------------------------------------------

  function upsert(state) {
    var id = state.id;
    var known = Object.prototype.hasOwnProperty.call(calls, id);
    var stamp = state.stamp || 0;
    // an HTTP answer and a push can cross on the way: keep the newer read
    if (known && stamp < (calls[id].stamp || 0)) return;
    if (!known && gone[id] && stamp <= gone[id]) return;
    if (!state.open) {
      gone[id] = stamp;
      delete calls[id];
      order = order.filter(function (x) { return x !== id; });
      if (selected === id) selected = null;
      render();
      return;
    }
    var before = known ? calls[id] : null;
    if (!known && !state.overview.mine && state.overview.taken_by) return; // another agent's
    calls[id] = state;
    if (before && before.overview.state === "dialing" && state.overview.state !== "dialing" &&
        state.overview.mine && state.overview.state !== "failed") {
      selected = id; // my callout connected: the desk opens on that gate
      showMessage(""); // "calling…" is over
    } else if (before && !before.overview.mine && state.overview.mine && selected === null) {
      selected = id; // I took it
    }
    if (!known) {
      order.unshift(id);
      // a call for me pops up on the desk when I am not already working another one
      if (state.overview.mine && state.overview.state !== "dialing" &&
          (selected === null || !calls[selected])) selected = id;
    }
    render();
  }

  function loadHello(data) {
    calls = {};
    order = [];
    (data.calls || []).forEach(function (state) {
      calls[state.id] = state;
      order.push(state.id);
    });
    if (selected !== null && !calls[selected]) selected = null;
    if (selected === null) {
      var mine = order.filter(function (id) { return calls[id].overview.mine; });
      if (mine.length) selected = mine[0];
    }
    seat = data.seat || "";
    setBoard(data.board || []);
    render();
  }

  function setBoard(items) {
    board = items;
    boardBase = Date.now();
    renderBoard();
  }

  // --- rendering --------------------------------------------------------------------------

  function render() {
    renderTabs();
    var state = selected !== null ? calls[selected] : null;
    $("desk-home").hidden = !!state;
    $("call-panel").hidden = !state;
    $("no-calls").hidden = order.length > 0;
    if (state) renderCall(state);
    $("seat-current").textContent = seat ? fmt(strings.seat_bound, { seat: seat }) : $("seat-current").textContent;
  }

  function renderTabs() {
    var nav = $("call-tabs");
    var home = $("tab-home");
    home.setAttribute("aria-selected", selected === null ? "true" : "false");
    Array.prototype.slice.call(nav.querySelectorAll(".call-tab[data-call-id]")).forEach(function (tab) {
      nav.removeChild(tab);
    });
    order.forEach(function (id) {
      var state = calls[id];
      var ov = state.overview;
      var tab = el("button", "call-tab");
      tab.type = "button";
      tab.dataset.callId = id;
      tab.dataset.testid = "call-tab-" + id;
      tab.setAttribute("data-testid", "call-tab-" + id);
      if (!ov.mine && state.overview.taken_by) tab.classList.add("taken");
      if (ov.state === "ringing") tab.classList.add("ringing");
      tab.setAttribute("aria-selected", selected === id ? "true" : "false");
      var where = ov.gate ? ov.gate.name : ov.number;
      tab.appendChild(el("span", "tab-gate", where));
      tab.appendChild(el("span", "tab-state", ov.mine ? ov.state_words : ov.taken_words));
      tab.addEventListener("click", function () { selected = id; showError(""); render(); });
      nav.appendChild(tab);
    });
  }

  function photo(boxId, url, alt) {
    var box = $(boxId);
    box.textContent = "";
    var safe = safeUrl(url);
    if (safe) {
      var img = el("img");
      img.src = safe;
      img.alt = alt || "";
      img.loading = "eager";
      box.appendChild(img);
      box.dataset.url = safe;
    } else {
      box.appendChild(el("span", "no-photo", strings.no_photo));
      box.dataset.url = "";
    }
  }

  var SMILE_SVG = '<svg viewBox="0 0 200 200" class="mirror-smile" role="img"><circle cx="100" cy="100" r="92" fill="#ffd54a" stroke="#f2a900" stroke-width="6"/><ellipse cx="68" cy="80" rx="10" ry="15" fill="#3b2a14"/><ellipse cx="132" cy="80" rx="10" ry="15" fill="#3b2a14"/><path d="M58 122 Q100 168 142 122" fill="none" stroke="#3b2a14" stroke-width="9" stroke-linecap="round"/></svg>';

  function renderMirror(screen) {
    var mirror = $("mirror");
    var band = $("mirror-band");
    var display = $("mirror-display");
    var voice = $("mirror-voice");
    display.textContent = "";
    if (!screen) {
      mirror.dataset.kind = "none";
      mirror.dataset.band = "grey";
      band.className = "mirror-band band-grey";
      display.appendChild(el("p", "muted", strings.no_screen));
      voice.textContent = "";
      $("mirror-online").textContent = "";
      return;
    }
    var d = screen.display;
    mirror.dataset.kind = d ? d.kind : "none";
    mirror.dataset.band = screen.band || "grey";
    mirror.dataset.voice = screen.voice || "";
    band.className = "mirror-band band-" + (screen.band || "grey");
    $("mirror-online").textContent = screen.online ? strings.online : strings.offline;
    if (!d) {
      display.appendChild(el("p", "muted", strings.no_screen));
    } else if (d.kind === "face") {
      display.innerHTML = SMILE_SVG; // a fixed drawing of our own
    } else if (d.kind === "qr") {
      var qr = el("div", "mirror-qr");
      qr.dataset.qr = d.qr || "";
      if (screen.qr_svg) qr.innerHTML = screen.qr_svg; // SVG made by the server (segno)
      display.appendChild(qr);
    } else if (d.kind === "text") {
      display.appendChild(el("p", "mirror-text", d.text || ""));
    } else if (d.kind === "vehicles") {
      var list = el("ul", "mirror-vehicles");
      (d.vehicles || []).forEach(function (v) {
        var item = el("li", "plate", v.plate || strings.unplated);
        var photo = safeUrl(v.photo_url);
        if (photo) {
          var img = el("img", "mirror-vehicle-photo");
          img.src = photo; // the car's entry photo, through the lot-checked staff link
          img.alt = v.plate || "";
          item.insertBefore(img, item.firstChild);
        }
        list.appendChild(item);
      });
      display.appendChild(list);
    }
    if (d && d.kind !== "text" && d.text) display.appendChild(el("p", "mirror-caption", d.text));
    voice.textContent = screen.voice || "";
  }

  function renderCall(state) {
    var ov = state.overview;
    var panel = $("call-panel");
    panel.dataset.callId = state.id;
    panel.dataset.mine = ov.mine ? "1" : "0";
    panel.classList.toggle("taken", !ov.mine && !!ov.taken_by);
    setText("ov-number", ov.number);
    setText("ov-robot", ov.robot ? ov.robot.code + " " + ov.robot.name : "");
    setText("ov-lot", ov.lot ? ov.lot.name : "");
    setText("ov-gate", ov.gate ? ov.gate.name + "（" + ov.gate.direction_words + "）" : "");
    setText("ov-state", ov.direction_words + " · " + ov.state_words + (ov.failure ? "：" + ov.failure : ""));
    setText("ov-taken", ov.taken_words);
    $("take-btn").hidden = !state.can_take;

    var scene = state.scene;
    photo("scene-gate", scene.gate_photo, "");
    photo("scene-car", scene.car_photo, "");
    $("scene-car-caption").textContent = scene.car_photo_words || "";
    photo("scene-env", scene.environment ? scene.environment.url : null, "");
    $("scene-env-time").textContent = scene.environment ? scene.environment.taken_text : strings.no_snapshot;
    $("capture-scene-btn").disabled = !state.can_act;
    renderMirror(scene.screen);

    var plateInput = $("plate-input");
    if (document.activeElement !== plateInput || plateInput.dataset.callId !== String(state.id)) {
      plateInput.value = state.plate || "";
      plateInput.dataset.callId = String(state.id);
    }
    plateInput.disabled = !state.can_act;
    $("query-btn").disabled = !state.can_act;

    var v = state.vehicle;
    $("vehicle").hidden = !v;
    if (v) {
      setText("veh-plate", v.plate_words);
      setText("veh-pass", v.pass_words);
      setText("veh-valid", v.valid_from_text ? v.valid_from_text + " — " + v.valid_until_text : "");
      setText("veh-expired", v.expired_by);
      setText("veh-entered", v.stay ? v.stay.entered_text : v.no_stay_words);
      setText("veh-duration", v.stay ? v.stay.duration_words : "");
      setText("veh-due", v.stay ? v.stay.due : "");
      setText("veh-reason", v.reason);
    }

    state.actions.forEach(function (a) {
      var button = $("act-" + a.action);
      if (!button) return;
      button.textContent = a.label;
      button.disabled = !a.enabled;
      button.hidden = !state.can_act && !ov.mine;
    });

    renderFuzzy(state);
    var dialog = $("abnormal-dialog");
    if (dialog.open) renderPicks(state);
  }

  function renderFuzzy(state) {
    var box = $("fuzzy");
    var fuzzy = state.fuzzy;
    box.hidden = !fuzzy;
    var list = $("fuzzy-list");
    list.textContent = "";
    if (!fuzzy) return;
    $("fuzzy-notice").textContent = fuzzy.notice;
    var confirmLabel = "确认为该车辆";
    fuzzy.candidates.forEach(function (c) {
      var item = el("li", "candidate");
      item.dataset.stayId = c.stay;
      item.setAttribute("data-testid", "candidate-" + c.stay);
      var shot = el("div", "shot");
      var safe = safeUrl(c.photo);
      if (safe) {
        var img = el("img");
        img.src = safe;
        img.alt = c.plate;
        shot.appendChild(img);
      } else {
        shot.appendChild(el("span", "no-photo", strings.no_photo));
      }
      item.appendChild(shot);
      item.appendChild(el("span", "plate", c.plate || strings.unplated));
      item.appendChild(el("span", "entered", strings.entered + " " + c.entered_text));
      item.appendChild(el("span", "fee", strings.fee + " " + c.fee));
      var button = el("button", "confirm-btn", confirmLabel);
      button.type = "button";
      button.setAttribute("data-testid", "confirm-" + c.stay);
      button.disabled = !state.can_act;
      button.addEventListener("click", function () {
        post(callUrl(state.id, "confirm_vehicle"), { stay: c.stay });
      });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function renderBoard() {
    var body = $("board-rows");
    body.textContent = "";
    board.forEach(function (item) {
      var row = el("tr", "board-row");
      row.dataset.gateId = item.gate.id;
      row.dataset.visitId = item.visit;
      row.setAttribute("data-testid", "board-row");
      row.appendChild(el("td", "", item.gate.name));
      row.appendChild(el("td", "", item.lot.name));
      var plate = el("td");
      plate.appendChild(el("span", "plate", item.plate));
      row.appendChild(plate);
      row.appendChild(el("td", "", item.title + (item.expected ? " · " + item.expected : "")));
      var waited = el("td", "board-waited waited");
      waited.dataset.seconds = item.waited_seconds;
      row.appendChild(waited);
      var cell = el("td");
      var button = el("button", "callout-btn", strings.call);
      button.type = "button";
      button.setAttribute("data-testid", "callout-" + item.gate.id);
      button.disabled = !seat;
      button.addEventListener("click", function () {
        button.disabled = true;
        post(root.dataset.calloutUrl, { gate: item.gate.id }).then(function () {
          button.disabled = !seat;
        });
      });
      cell.appendChild(button);
      row.appendChild(cell);
      body.appendChild(row);
    });
    $("board").hidden = board.length === 0;
    $("board-empty").hidden = board.length !== 0;
    tick();
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function waitedText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function tick() {
    var extra = (Date.now() - boardBase) / 1000;
    Array.prototype.forEach.call(document.querySelectorAll(".board-waited"), function (cell) {
      cell.textContent = waitedText(Number(cell.dataset.seconds || 0) + extra);
    });
  }

  // --- dialogs ------------------------------------------------------------------------------

  function current() { return selected !== null ? calls[selected] : null; }

  function renderPicks(state) {
    var gate = state.overview.gate;
    var exit = gate && gate.direction === "exit";
    $("abnormal-evidence").hidden = !exit;
    ["id", "scene"].forEach(function (kind) {
      var box = $(kind === "id" ? "abnormal-id-photos" : "abnormal-scene-photos");
      var checked = {};
      Array.prototype.forEach.call(box.querySelectorAll("input[type=checkbox]"), function (input) {
        checked[input.value] = input.checked;
      });
      box.textContent = "";
      (state.photos[kind] || []).forEach(function (p, index) {
        var label = el("label", "pick");
        var input = el("input");
        input.type = "checkbox";
        input.name = kind + "_photos";
        input.value = p.id;
        input.setAttribute("data-testid", "pick-" + kind + "-" + p.id);
        input.checked = Object.prototype.hasOwnProperty.call(checked, String(p.id))
          ? checked[String(p.id)] : index < 4;
        label.appendChild(input);
        var safe = safeUrl(p.url);
        if (safe) {
          var img = el("img");
          img.src = safe;
          img.alt = p.taken_text;
          label.appendChild(img);
        }
        label.appendChild(el("span", "muted", p.taken_text));
        box.appendChild(label);
      });
    });
  }

  function picked(boxId) {
    return Array.prototype.map.call(
      $(boxId).querySelectorAll("input[type=checkbox]:checked"),
      function (input) { return Number(input.value); }
    );
  }

  function openDialog(id) {
    showError("");
    var dialog = $(id);
    if (parked[id]) {
      dialog.appendChild(parked[id]);
      delete parked[id];
    }
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  }

  function closeDialog(id) {
    var dialog = $(id);
    if (typeof dialog.close === "function" && dialog.open) dialog.close();
    else dialog.removeAttribute("open");
    if (!parked[id]) park(dialog);
  }

  Array.prototype.forEach.call(document.querySelectorAll("dialog"), function (dialog) {
    dialog.addEventListener("close", function () { if (!parked[dialog.id]) park(dialog); });
  });

  // --- wiring ---------------------------------------------------------------------------------

  $("tab-home").addEventListener("click", function () { selected = null; showError(""); render(); });

  $("seat-form").addEventListener("submit", function (event) {
    event.preventDefault();
    post(root.dataset.seatUrl, { seat: $("seat-input").value.trim() }).then(function (data) {
      if (!data) return;
      seat = data.seat;
      $("seat-current").textContent = fmt(strings.seat_bound, { seat: seat });
      renderBoard();
    });
  });

  $("plate-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var state = current();
    if (!state) return;
    post(callUrl(state.id, "query"), { plate: $("plate-input").value.trim() });
  });

  $("take-btn").addEventListener("click", function () {
    var state = current();
    if (state) post(callUrl(state.id, "take"), {});
  });

  Array.prototype.forEach.call(document.querySelectorAll("#actions button[data-action]"), function (button) {
    button.addEventListener("click", function () {
      var state = current();
      if (!state) return;
      var action = button.dataset.action;
      if (action === "visitor_release") {
        $("visitor-form").reset();
        openDialog("visitor-dialog");
      } else if (action === "abnormal_open") {
        $("abnormal-form").reset();
        $("abnormal-id-photos").textContent = "";
        $("abnormal-scene-photos").textContent = "";
        renderPicks(state);
        openDialog("abnormal-dialog");
        // an exit needs evidence (C3b): ask the robot for the ID and the environment camera
        // for a snapshot at once, unless this call has them already; more on request
        var gate = state.overview.gate;
        if (gate && gate.direction === "exit") {
          if (!(state.photos.id || []).length) capture("id");
          if (!(state.photos.scene || []).length) capture("scene");
        }
      } else {
        post(callUrl(state.id, action), {});
      }
    });
  });

  $("visitor-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var state = current();
    if (!state) return;
    post(callUrl(state.id, "visitor_release"), {
      phone: $("visitor-phone").value.trim(),
      reason: $("visitor-reason").value.trim()
    }).then(function (data) { if (data) closeDialog("visitor-dialog"); });
  });

  $("abnormal-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var state = current();
    if (!state) return;
    post(callUrl(state.id, "abnormal_open"), {
      reason: $("abnormal-reason").value,
      note: $("abnormal-note").value.trim(),
      id_photos: picked("abnormal-id-photos"),
      scene_photos: picked("abnormal-scene-photos")
    }).then(function (data) { if (data) closeDialog("abnormal-dialog"); });
  });

  Array.prototype.forEach.call(document.querySelectorAll("dialog .cancel"), function (button) {
    button.addEventListener("click", function () { closeDialog(button.closest("dialog").id); });
  });

  function capture(kind) {
    var state = current();
    if (state) post(callUrl(state.id, kind === "id" ? "capture_id" : "capture_scene"), {});
  }
  $("capture-id-btn").addEventListener("click", function () { capture("id"); });
  $("abnormal-capture-scene").addEventListener("click", function () { capture("scene"); });
  $("capture-scene-btn").addEventListener("click", function () { capture("scene"); });

  // --- 搜索车场: the lot cards -----------------------------------------------------------------

  var lotTimer = null;
  var lotQuery = "";

  function renderLots(lots) {
    var box = $("lot-results");
    box.textContent = "";
    lots.forEach(function (lot) {
      var card = el("div", "lot-card");
      card.dataset.lotId = lot.id;
      card.setAttribute("data-testid", "lot-card-" + lot.id);
      card.appendChild(el("h3", "", lot.name));
      var dl = el("dl");
      [[strings.free_spaces, String(lot.free_spaces)], [strings.visitors, lot.visitors_words],
       [strings.fee_rule, lot.tariff_text], [strings.contact, lot.contact]].forEach(function (row) {
        dl.appendChild(el("dt", "", row[0]));
        dl.appendChild(el("dd", "", row[1]));
      });
      card.appendChild(dl);
      box.appendChild(card);
    });
    if (!lots.length && lotQuery) box.appendChild(el("p", "muted", strings.no_lot));
  }

  function searchLots() {
    var query = $("lot-search").value.trim();
    lotQuery = query;
    if (!query) { renderLots([]); return; }
    fetch(root.dataset.lotsUrl + "?q=" + encodeURIComponent(query), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (r) { return r.json(); }).then(function (data) {
      if (query === lotQuery) renderLots(data.lots || []);
    }).catch(function () { showError(strings.error); });
  }

  $("lot-search").addEventListener("input", function () {
    if (lotTimer) window.clearTimeout(lotTimer);
    lotTimer = window.setTimeout(searchLots, 200);
  });
  $("lot-search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    searchLots();
  });

  // --- the socket -----------------------------------------------------------------------------

  var socket = null;
  var retry = 0;
  var pinger = null;

  function setLost(lost) {
    root.dataset.connected = lost ? "0" : "1";
    if (!statusBox) return;
    statusBox.hidden = !lost;
    statusBox.textContent = lost ? strings.connection_lost : "";
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
    socket.onopen = function () {
      retry = 0;
      setLost(false);
      if (pinger) window.clearInterval(pinger);
      pinger = window.setInterval(function () {
        if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "ping" }));
      }, 25000);
    };
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "hello") loadHello(data);
      else if (data.type === "call" && data.call) upsert(data.call);
      else if (data.type === "board") setBoard(data.board || []);
    };
    socket.onclose = function (event) {
      if (pinger) { window.clearInterval(pinger); pinger = null; }
      setLost(true);
      if (event.code === 4403) {
        window.location.reload(); // logged out or no longer an agent: the page says why
        return;
      }
      var delay = Math.min(10000, 500 * Math.pow(2, retry));
      retry += 1;
      window.setTimeout(connect, delay);
    };
  }

  Array.prototype.forEach.call(document.querySelectorAll("dialog"), park);
  loadHello(hello);
  root.dataset.connected = "0";
  connect();
  window.setInterval(tick, 1000);
})();
