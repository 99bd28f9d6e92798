/* EP Park live pages: poll the page's JSON twin and update the DOM in place (no reloads). */
(function () {
  "use strict";

  var strings = JSON.parse(document.getElementById("live-strings").textContent);
  var statusBox = document.getElementById("live-status");
  var clockOffset = 0; // server time minus this browser's time, in ms

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function setLost(lost) {
    if (!statusBox) return;
    statusBox.hidden = !lost;
    statusBox.textContent = lost ? strings.connection_lost : "";
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function waitedText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function localText(iso, zone) {
    if (!iso) return "—";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "—";
    var parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zone || undefined, hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " +
      parts.hour + ":" + parts.minute + ":" + parts.second;
  }

  function safeUrl(url) {
    if (typeof url !== "string") return null;
    if (/^https?:\/\//i.test(url) || (url.charAt(0) === "/" && url.charAt(1) !== "/")) return url;
    return null;
  }

  function onlineBadge(node, online) {
    node.className = "badge " + (online ? "badge-online" : "badge-offline");
    node.textContent = online ? strings.online : strings.offline;
    return node;
  }

  /* Poll root.dataset.stateUrl every root.dataset.interval ms; render only on change. */
  function poll(root, render) {
    var url = root.dataset.stateUrl;
    var interval = parseInt(root.dataset.interval, 10) || 2000;
    var last = null;
    function tick() {
      fetch(url, { cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 403 || response.status === 404) {
            window.location.reload(); // logged out or moved out of scope: the page says why
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (text) {
          if (text === null) return;
          setLost(false);
          var state = JSON.parse(text);
          if (state.now) clockOffset = Date.parse(state.now) - Date.now();
          if (text !== last) {
            last = text;
            render(state);
          }
          window.setTimeout(tick, interval);
        })
        .catch(function () {
          setLost(true);
          window.setTimeout(tick, interval);
        });
    }
    tick();
  }

  /* Waiting times count up every second between polls. */
  function tickWaited() {
    var now = Date.now() + clockOffset;
    document.querySelectorAll(".waited[data-arrived]").forEach(function (node) {
      var arrived = Date.parse(node.dataset.arrived);
      if (!isNaN(arrived)) node.textContent = waitedText((now - arrived) / 1000);
    });
  }

  // --- the robot ---------------------------------------------------------------------------

  function renderVehicles(list, vehicles, zone) {
    list.replaceChildren();
    vehicles.forEach(function (vehicle) {
      var item = el("li", "vehicle");
      var src = safeUrl(vehicle.photo_url);
      if (src) {
        var img = el("img");
        img.src = src;
        img.alt = vehicle.plate || "";
        item.appendChild(img);
      } else {
        item.appendChild(el("div", "no-photo", strings.no_photo));
      }
      item.appendChild(el("span", "plate", vehicle.plate || strings.unplated));
      item.appendChild(el("span", "entered",
        strings.entered + " " + (vehicle.entered_at ? localText(vehicle.entered_at, zone) : "—")));
      list.appendChild(item);
    });
  }

  function renderRobot(root, state) {
    var zone = root.dataset.zone;
    var band = document.getElementById("band");
    band.className = "band band-" + state.band;
    band.dataset.band = state.band;

    var display = state.display;
    var kind = display ? display.kind : "none";
    var screen = document.getElementById("screen");
    screen.dataset.kind = kind;
    screen.querySelectorAll("[data-panel]").forEach(function (panel) {
      panel.hidden = panel.dataset.panel !== kind;
    });
    if (kind === "qr") {
      var box = document.getElementById("qr");
      if (box.dataset.qr !== display.qr) {
        box.innerHTML = state.qr_svg || ""; // SVG made by segno on the server
        box.dataset.qr = display.qr;
      }
    } else if (kind === "text") {
      document.getElementById("display-text").textContent = display.text || "";
    } else if (kind === "vehicles") {
      renderVehicles(document.getElementById("vehicles"), display.vehicles || [], zone);
    }
    var caption = document.getElementById("display-caption");
    var captionText = display && kind !== "text" ? display.text || "" : "";
    caption.textContent = captionText;
    caption.hidden = !captionText;

    var voice = document.getElementById("voice");
    document.getElementById("voice-text").textContent = state.voice || "";
    voice.hidden = !state.voice;

    onlineBadge(document.getElementById("online"), state.online);
    var since = document.getElementById("since");
    since.setAttribute("datetime", state.since || "");
    since.textContent = localText(state.since, zone);
  }

  // --- the city ----------------------------------------------------------------------------

  function structureOf(lots) {
    return lots.map(function (lot) {
      return lot.id + ":" + lot.gates.map(function (gate) { return gate.id; }).join(",");
    }).join(";");
  }

  function fillRobotCells(row, gate) {
    var cells = row.children;
    var robot = gate.robot;
    [1, 2, 3].forEach(function (i) { cells[i].replaceChildren(); });
    if (!robot) {
      cells[1].appendChild(el("span", "muted", strings.no_robot));
      return;
    }
    var link = el("a", "robot-link", robot.name);
    link.href = robot.url;
    cells[1].append(link, " ", onlineBadge(el("span"), robot.online));
    var swatch = el("span", "swatch band-" + robot.band);
    swatch.dataset.band = robot.band;
    swatch.title = robot.band;
    cells[2].appendChild(swatch);
    cells[3].appendChild(el("span", "summary", robot.summary));
    if (robot.voice) {
      cells[3].append(el("br"), el("span", "voice-line", robot.voice));
    }
  }

  function fillGateRow(row, gate) {
    var cells = row.children;
    fillRobotCells(row, gate);
    cells[4].replaceChildren();
    if (gate.waiting) {
      var waited = el("span", "waited", gate.waiting.waited);
      waited.dataset.arrived = gate.waiting.arrived_at;
      cells[4].append(
        el("span", "plate", gate.waiting.plate || strings.unplated), " ",
        el("span", "scenario", gate.waiting.title), " ", waited);
    } else {
      cells[4].appendChild(el("span", "muted", strings.none_waiting));
    }
    cells[5].replaceChildren();
    if (!gate.cameras.length) cells[5].appendChild(el("span", "muted", strings.no_camera));
    gate.cameras.forEach(function (camera) {
      var badge = onlineBadge(el("span"), camera.online);
      badge.title = camera.name;
      cells[5].append(badge, " ");
    });
  }

  function renderCity(root, state, structure) {
    if (structureOf(state.lots) !== structure) {
      window.location.reload(); // a lot or gate came or went: render the page afresh
      return;
    }
    state.lots.forEach(function (lot) {
      var section = root.querySelector('[data-lot-id="' + lot.id + '"]');
      section.querySelector(".free").textContent = lot.free_spaces;
      lot.gates.forEach(function (gate) {
        fillGateRow(section.querySelector('[data-gate-id="' + gate.id + '"]'), gate);
      });
    });
    tickWaited();
  }

  function initialCityStructure(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-lot-id]"), function (section) {
      return section.dataset.lotId + ":" + Array.prototype.map.call(
        section.querySelectorAll("[data-gate-id]"),
        function (row) { return row.dataset.gateId; }).join(",");
    }).join(";");
  }

  // --- the held-up list --------------------------------------------------------------------

  function renderCongestion(root, state) {
    var body = document.getElementById("held-rows");
    body.replaceChildren();
    state.items.forEach(function (item, index) {
      var row = el("tr", "held-row");
      row.dataset.visitId = item.visit_id;
      var gateCell = el("td");
      if (item.robot_url) {
        var link = el("a", null, item.gate.name);
        link.href = item.robot_url;
        gateCell.appendChild(link);
      } else {
        gateCell.textContent = item.gate.name;
      }
      var scenario = el("td");
      scenario.append(el("span", "scenario", item.title), el("br"),
        el("span", "voice-line", item.voice));
      var plateCell = el("td");
      plateCell.appendChild(el("span", "plate", item.plate || strings.unplated));
      var waited = el("td", "waited", item.waited);
      waited.dataset.arrived = item.arrived_at;
      row.append(el("td", null, String(index + 1)), gateCell, el("td", null, item.lot.name),
        plateCell, scenario,
        el("td", null, item.expected_action_label), waited);
      body.appendChild(row);
    });
    root.querySelector("table.held").hidden = state.items.length === 0;
    document.getElementById("held-empty").hidden = state.items.length !== 0;
    tickWaited();
  }

  // --- start -------------------------------------------------------------------------------

  var page = document.body.dataset.page;
  var root = document.querySelector("main[data-state-url]");
  if (!root) return;
  if (page === "robot") {
    poll(root, function (state) { renderRobot(root, state); });
  } else if (page === "city") {
    var structure = initialCityStructure(root);
    poll(root, function (state) { renderCity(root, state, structure); });
    window.setInterval(tickWaited, 1000);
  } else if (page === "congestion") {
    poll(root, function (state) { renderCongestion(root, state); });
    window.setInterval(tickWaited, 1000);
  }
})();
