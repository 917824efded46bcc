/* 房本助手 web chat. Talks only to /chat/api/* on the same origin; the conversation id lives in
   an HttpOnly cookie this script never sees. */
(function () {
  "use strict";

  var log = document.getElementById("log");
  var input = document.getElementById("input");
  var form = document.getElementById("composer");
  var sendBtn = document.getElementById("send-btn");
  var fontBtn = document.getElementById("font-toggle");
  var humanBtn = document.getElementById("human-btn");
  var quick = document.getElementById("quick");
  var staffBar = document.getElementById("staff-bar");
  var FONT_KEY = "fangben.chat.bigFont";
  var GAP_MS = 5 * 60 * 1000;
  // Polling for notices and staff messages: often while the page is looked at, rarely when not.
  var POLL_VISIBLE_MS = 4000;
  var POLL_HIDDEN_MS = 30000;
  var lastShown = 0;
  var busy = false;
  var seen = {};         // ids of the stored bubbles on the page: none is shown twice
  var lastId = 0;        // every stored bubble up to this id has been fetched
  var loaded = false;    // the history is on the page (polling starts after it)
  var polling = false;
  var pollTimer = null;
  var stopped = false;   // the conversation is no longer valid: stop polling
  var lastBotId = 0;     // newest bot bubble
  var lastStaffId = 0;   // newest staff bubble (or message answered by a silent, taken-over bot)

  var WELCOME = "您好，我是房本助手。可以帮您查询房本（不动产权证）办理进度、" +
    "解释为什么暂时办不了证、需要带什么材料，也可以帮您提交信访。\n" +
    "请直接告诉我小区和房号，例如“观象山庄3号楼2单元501”，或点下面的常见问题。";

  function api(method, path, body) {
    var opts = {
      method: method,
      credentials: "same-origin",
      headers: { "X-Chat-Client": "web", "Accept": "application/json" }
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        return { ok: res.ok, status: res.status, data: data };
      });
    });
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatTime(d) {
    var now = new Date();
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return hm;
    var y = new Date(now); y.setDate(now.getDate() - 1);
    if (d.toDateString() === y.toDateString()) return "昨天 " + hm;
    if (d.getFullYear() === now.getFullYear()) return (d.getMonth() + 1) + "月" + d.getDate() + "日 " + hm;
    return d.getFullYear() + "年" + (d.getMonth() + 1) + "月" + d.getDate() + "日 " + hm;
  }

  function maybeTime(at) {
    var d = at ? new Date(at) : new Date();
    if (isNaN(d.getTime())) d = new Date();
    if (d.getTime() - lastShown >= GAP_MS) {
      var t = document.createElement("div");
      t.className = "time";
      t.textContent = formatTime(d);
      log.appendChild(t);
    }
    lastShown = d.getTime();
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function disableOldChips() {
    var chips = log.querySelectorAll(".buttons .chip");
    for (var i = 0; i < chips.length; i++) chips[i].disabled = true;
  }

  // Petition numbers (XF-20261123-0007) stay on one line so residents can copy them whole.
  var KEEP_WHOLE = /(XF-\d{8}-\d{4})/;

  function setText(el, text) {
    el.textContent = "";
    String(text).split(KEEP_WHOLE).forEach(function (part, i) {
      if (!part) return;
      if (i % 2) {
        var span = document.createElement("span");
        span.className = "keep";
        span.textContent = part;
        el.appendChild(span);
      } else {
        el.appendChild(document.createTextNode(part));
      }
    });
  }

  // A new answer is read from its start: scroll so its first bubble sits at the top of the
  // log (a long status answer would otherwise show only its last lines on a phone).
  function scrollToStart(row) {
    var top = row.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop - 8;
    log.scrollTop = Math.max(0, top);
  }

  var AVATARS = { bot: "房", user: "我", staff: "工" };

  function addBubble(role, text, buttons, at, live, keepScroll, staffName) {
    maybeTime(at);
    var row = document.createElement("div");
    row.className = "row " + role;
    var avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = AVATARS[role] || "房";
    var stack = document.createElement("div");
    stack.className = "stack";
    if (role === "staff") {
      var name = document.createElement("div");
      name.className = "name";
      // The api gives the family name ("李*"); say who that is.
      name.textContent = !staffName ? "工作人员"
        : (staffName.indexOf("工作人员") === 0 ? staffName : "工作人员 " + staffName);
      stack.appendChild(name);
    }
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    setText(bubble, text);
    stack.appendChild(bubble);
    if (buttons && buttons.length) {
      var box = document.createElement("div");
      box.className = "buttons";
      buttons.forEach(function (b) {
        var chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = b.title;
        chip.disabled = !live;
        chip.addEventListener("click", function () { send(b.title, b.payload); });
        box.appendChild(chip);
      });
      stack.appendChild(box);
    }
    row.appendChild(avatar);
    row.appendChild(stack);
    log.appendChild(row);
    if (!keepScroll) scrollDown();
    return row;
  }

  // News of the resident's petition: a card across the log, not a chat bubble.
  function addNoticeCard(text, at, keepScroll) {
    maybeTime(at);
    var row = document.createElement("div");
    row.className = "row notice-row";
    var card = document.createElement("section");
    card.className = "card";
    card.setAttribute("aria-label", "信访进展");
    var title = document.createElement("div");
    title.className = "card-title";
    title.textContent = "信访进展";
    var body = document.createElement("div");
    body.className = "card-text";
    setText(body, text);
    card.appendChild(title);
    card.appendChild(body);
    row.appendChild(card);
    log.appendChild(row);
    if (!keepScroll) scrollDown();
    return row;
  }

  function updateStaffBar() {
    staffBar.hidden = !(lastStaffId > lastBotId);
  }

  // One stored bubble onto the page, once: false when it is already there.
  function showStored(m, live, keepScroll) {
    if (!m || m.id === undefined || m.id === null) return null;
    if (seen[m.id]) return null;
    seen[m.id] = true;
    var row;
    if (m.role === "notice") {
      row = addNoticeCard(m.text, m.at, keepScroll);
    } else {
      row = addBubble(m.role, m.text, m.buttons, m.at, live, keepScroll, m.staff_name);
    }
    row.setAttribute("data-id", String(m.id));
    if (m.role === "bot") lastBotId = Math.max(lastBotId, m.id);
    if (m.role === "staff") lastStaffId = Math.max(lastStaffId, m.id);
    return row;
  }

  var RELOAD = { label: "刷新", run: function () { location.reload(); } };

  function addNotice(text, isError, action) {
    var n = document.createElement("div");
    n.className = "notice" + (isError ? " error" : "");
    n.setAttribute("role", isError ? "alert" : "status");
    n.textContent = text;
    if (action) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = action.label;
      b.addEventListener("click", function () { n.remove(); action.run(); });
      n.appendChild(b);
    }
    log.appendChild(n);
    scrollDown();
  }

  function showTyping() {
    var row = document.createElement("div");
    row.className = "row bot typing-row";
    row.innerHTML = '<div class="avatar" aria-hidden="true">房</div>' +
      '<div class="stack"><div class="bubble" aria-label="对方正在输入">' +
      '<span class="typing"><i></i><i></i><i></i></span></div></div>';
    log.appendChild(row);
    scrollDown();
    return row;
  }

  function setBusy(b) {
    busy = b;
    sendBtn.disabled = b;
  }

  function send(text, payload) {
    text = (text || "").trim();
    if (!text || busy) return;
    setBusy(true);
    disableOldChips();
    var mine = addBubble("user", text, null, null, false);
    var typing = showTyping();
    var body = { text: text };
    if (payload) body.payload = payload;
    var resend = {
      label: "重发",
      run: function () { mine.remove(); send(text, payload); }
    };
    api("POST", "/chat/api/messages", body).then(function (res) {
      typing.remove();
      if (!res.ok) {
        mine.classList.add("failed");
        var msg = (res.data && res.data.message) || "发送失败，请稍后再试。";
        var action = res.status === 403 ? RELOAD : (res.status >= 500 ? resend : null);
        addNotice(msg, true, action);
        return;
      }
      var user = res.data.user || {};
      if (seen[user.id]) {
        mine.remove();  // already on the page (another tab's poll or this one's)
      } else {
        setText(mine.querySelector(".bubble"), user.text);
        seen[user.id] = true;
        mine.setAttribute("data-id", String(user.id));
      }
      // No reply is not an error: a clerk has taken the conversation over and the bot is
      // silent; the clerk's answer arrives by polling.
      if (res.data.takeover) lastStaffId = Math.max(lastStaffId, user.id || 0);
      var first = null;
      (res.data.replies || []).forEach(function (m) {
        var row = showStored(m, true, true);
        first = first || row;
      });
      if (first) scrollToStart(first);
      updateStaffBar();
    }).catch(function () {
      typing.remove();
      mine.classList.add("failed");
      addNotice("网络不太好，消息没有发出去，请检查网络后再试。", true, resend);
    }).then(function () {
      setBusy(false);
      schedulePoll(0);
    });
  }

  // New stored bubbles (notices, staff messages, other tabs' messages) since `lastId`.
  function poll() {
    if (polling || stopped || !loaded) return;
    if (busy) { schedulePoll(); return; }
    polling = true;
    api("GET", "/chat/api/history?after=" + lastId).then(function (res) {
      if (res.status === 403) { stopped = true; return; }
      if (!res.ok) return;
      var messages = res.data.messages || [];
      var appended = false;
      for (var i = 0; i < messages.length; i++) {
        var m = messages[i];
        // A send in flight will show its own bubbles: stop before them (fetched again later,
        // then skipped as seen), so nothing shows twice nor out of turn.
        if (busy && (m.role === "user" || m.role === "bot")) break;
        if (showStored(m, m.role === "bot", true)) appended = true;
        lastId = Math.max(lastId, m.id);
      }
      if (appended) scrollDown();
      updateStaffBar();
    }).catch(function () { /* offline for a moment: the next poll tries again */ }).then(function () {
      polling = false;
      schedulePoll();
    });
  }

  function schedulePoll(delay) {
    if (stopped) return;
    if (pollTimer) clearTimeout(pollTimer);
    if (delay === undefined) {
      delay = document.visibilityState === "visible" ? POLL_VISIBLE_MS : POLL_HIDDEN_MS;
    }
    pollTimer = setTimeout(poll, delay);
  }

  function loadHistory() {
    api("GET", "/chat/api/history").then(function (res) {
      if (!res.ok) {
        addNotice((res.data && res.data.message) || "读取聊天记录失败。", true, RELOAD);
        return;
      }
      var messages = res.data.messages || [];
      // The welcome is not part of the transcript; it opens every conversation.
      addBubble("bot", WELCOME, null, messages.length ? messages[0].at : null, false);
      messages.forEach(function (m, i) {
        // A bot's chips stay tappable until the resident writes again.
        var live = m.role === "bot" && messages.slice(i + 1).every(function (x) { return x.role !== "user"; });
        showStored(m, live, false);
        lastId = Math.max(lastId, m.id);
      });
      updateStaffBar();
      loaded = true;
      schedulePoll();
    }).catch(function () {
      addNotice("网络不太好，请检查网络后刷新页面。", true, RELOAD);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") schedulePoll(0); else schedulePoll();
  });
  window.addEventListener("focus", function () { schedulePoll(0); });

  function applyFont(big) {
    document.documentElement.classList.toggle("big", big);
    fontBtn.setAttribute("aria-pressed", big ? "true" : "false");
    fontBtn.textContent = big ? "标准字" : "大字";
  }

  fontBtn.addEventListener("click", function () {
    var big = !document.documentElement.classList.contains("big");
    try { localStorage.setItem(FONT_KEY, big ? "1" : "0"); } catch (e) { /* private mode */ }
    applyFont(big);
    scrollDown();
  });
  humanBtn.addEventListener("click", function () { send("转人工"); });
  quick.addEventListener("click", function (e) {
    if (e.target.classList.contains("quick-chip")) send(e.target.textContent);
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    autoGrow();
    send(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : sendBtn.click();
    }
  });
  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", autoGrow);

  var stored = null;
  try { stored = localStorage.getItem(FONT_KEY); } catch (e) { /* private mode */ }
  applyFont(stored === "1");
  loadHistory();
})();
