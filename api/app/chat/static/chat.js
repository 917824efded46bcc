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
  var FONT_KEY = "fangben.chat.bigFont";
  var GAP_MS = 5 * 60 * 1000;
  var lastShown = 0;
  var busy = false;

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

  function addBubble(role, text, buttons, at, live, keepScroll) {
    maybeTime(at);
    var row = document.createElement("div");
    row.className = "row " + role;
    var avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = role === "bot" ? "房" : "我";
    var stack = document.createElement("div");
    stack.className = "stack";
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
      setText(mine.querySelector(".bubble"), res.data.user.text);
      var replies = res.data.replies || [];
      if (!replies.length) addNotice("小助手暂时没有回复，请换个说法再试试。", false, null);
      var first = null;
      replies.forEach(function (m) {
        var row = addBubble("bot", m.text, m.buttons, m.at, true, true);
        first = first || row;
      });
      if (first) scrollToStart(first);
    }).catch(function () {
      typing.remove();
      mine.classList.add("failed");
      addNotice("网络不太好，消息没有发出去，请检查网络后再试。", true, resend);
    }).then(function () {
      setBusy(false);
    });
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
        var live = m.role === "bot" && messages.slice(i + 1).every(function (x) { return x.role === "bot"; });
        addBubble(m.role, m.text, m.buttons, m.at, live);
      });
    }).catch(function () {
      addNotice("网络不太好，请检查网络后刷新页面。", true, RELOAD);
    });
  }

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
