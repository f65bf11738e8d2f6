// baton dashboard: live fragments over server-sent events, ages, and the actions' confirmation.
// Everything from the cluster arrives escaped in server-rendered HTML; this script only moves
// that HTML into place and sets text (textContent), never builds markup from data.
'use strict';

(() => {
  const body = document.body;
  const live = document.getElementById('live');
  const conn = document.getElementById('conn');
  const flash = document.getElementById('flash');
  const dialog = document.getElementById('confirm');
  const confirmText = document.getElementById('confirm-text');
  const pick = document.getElementById('confirm-pick');
  const pickLabel = document.getElementById('confirm-pick-label');
  const select = document.getElementById('confirm-select');
  const okButton = document.getElementById('confirm-ok');
  const tokenMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = tokenMeta ? tokenMeta.content : '';

  // kubectl's ages: 59s, 119s, 2m, 3m5s, 179m, 3h, 3h25m, 47h, 2d, 2d4h, 8d, 2y, 2y1d.
  function age(ms) {
    const s = Math.trunc(ms / 1000);
    if (s < -1) return '<invalid>';
    if (s < 0) return '0s';
    if (s < 120) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 10) return s % 60 === 0 ? m + 'm' : m + 'm' + (s % 60) + 's';
    if (m < 180) return m + 'm';
    const h = Math.floor(s / 3600);
    if (h < 8) return m % 60 === 0 ? h + 'h' : h + 'h' + (m % 60) + 'm';
    if (h < 48) return h + 'h';
    const d = Math.floor(h / 24);
    if (h < 192) return h % 24 === 0 ? d + 'd' : d + 'd' + (h % 24) + 'h';
    if (d < 730) return d + 'd';
    const y = Math.floor(d / 365);
    return d % 365 === 0 ? y + 'y' : y + 'y' + (d % 365) + 'd';
  }

  function tick() {
    const now = Date.now();
    for (const t of document.querySelectorAll('time[datetime]')) {
      const at = Date.parse(t.dateTime);
      if (!Number.isNaN(at)) {
        t.textContent = age(now - at);
        t.title = t.dateTime;
      }
    }
  }

  function status(text, cls) {
    if (!conn) return;
    conn.textContent = text;
    conn.className = 'conn ' + cls;
  }

  function connect() {
    const url = body.dataset.live;
    if (!url || !window.EventSource) return;
    const es = new EventSource(url);
    es.addEventListener('open', () => status('live', 'up'));
    es.addEventListener('error', () => status('reconnecting…', 'down'));
    es.addEventListener('update', (e) => {
      // The server's fragment: escaped, rendered HTML (the CSP forbids any script in it).
      live.innerHTML = JSON.parse(e.data);
      tick();
      body.dataset.updates = String(Number(body.dataset.updates || '0') + 1);
    });
  }

  function show(ok, message) {
    flash.hidden = false;
    flash.textContent = message;
    flash.className = ok ? 'flash ok' : 'flash error';
    flash.setAttribute('role', ok ? 'status' : 'alert');
  }

  let pending = null;

  function ask(button) {
    pending = {
      url: button.dataset.url,
      body: button.dataset.body || '{}',
      pick: button.dataset.pick || null,
      label: button.textContent,
    };
    confirmText.textContent = button.dataset.confirm || 'Are you sure?';
    select.replaceChildren();
    if (pending.pick) {
      const choices = JSON.parse(button.dataset.choices || '[]');
      for (const c of choices) {
        const o = document.createElement('option');
        o.value = c;
        o.textContent = c;
        select.appendChild(o);
      }
      pickLabel.textContent = button.dataset.pickLabel || pending.pick;
      pick.hidden = false;
    } else {
      pick.hidden = true;
    }
    okButton.textContent = pending.label;
    dialog.returnValue = '';
    dialog.showModal();
  }

  async function send(p) {
    const payload = JSON.parse(p.body);
    if (p.pick) payload[p.pick] = select.value;
    show(true, p.label + '…');
    try {
      const r = await fetch(p.url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(payload),
      });
      let answer;
      try {
        answer = await r.json();
      } catch (_) {
        answer = { error: 'HTTP ' + r.status };
      }
      show(r.ok, r.ok ? answer.message : answer.error);
    } catch (e) {
      show(false, 'error: ' + e);
    }
  }

  document.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    e.preventDefault();
    ask(button);
  });

  dialog.addEventListener('close', () => {
    const p = pending;
    pending = null;
    if (p && dialog.returnValue === 'ok') send(p);
  });

  tick();
  setInterval(tick, 1000);
  connect();
})();
