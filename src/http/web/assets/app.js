// vault: the one script of the web pages. The Content-Security-Policy allows no inline code,
// so every behaviour is attached here, by id or class, once the page has loaded (the script is
// deferred). Plain modern JavaScript, no build step, no dependencies.
(function () {
  'use strict';

  var $ = function (sel, root) { return (root || document).querySelector(sel); };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  // fetch with JSON in and out. Every change carries the session's CSRF token; the answer is
  // {ok, status, data} and never throws, so callers only branch on status.
  async function api(method, url, body) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
    var resp;
    try {
      resp = await fetch(url, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
      });
    } catch (e) {
      return { ok: false, status: 0, data: { message: 'The server could not be reached. Check the connection and try again.' } };
    }
    var data = {};
    var text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { message: text.slice(0, 300) }; }
    }
    return { ok: resp.ok, status: resp.status, data: data || {} };
  }

  // A sentence for a failed call, whichever error shape the endpoint uses.
  function errorText(res) {
    var d = res.data || {};
    if (res.status === 401) return 'You are signed out. Reload the page to sign in again.';
    if (d.error === 'csrf') return 'Your session changed in another tab. Reload the page and try again.';
    return d.message || d.error_description || d.error || ('The request failed (HTTP ' + res.status + ').');
  }

  function say(el, message) {
    if (el) el.textContent = message || '';
  }

  function encodePath(path) {
    return path.split('/').map(encodeURIComponent).join('/');
  }

  function noteUrl(path) {
    return '/note/' + encodePath(path);
  }

  // A `next` that stays on this server.
  function safeNext(next) {
    return next && next.charAt(0) === '/' && next.charAt(1) !== '/' && next.indexOf('\\') < 0 ? next : '/browse';
  }

  // Server-rendered, already sanitized HTML (the preview). Parsed in an inert document, so
  // nothing in it runs while it is parsed; the CSP forbids inline handlers on top.
  function showRendered(el, html) {
    var doc = new DOMParser().parseFromString(html, 'text/html');
    el.replaceChildren.apply(el, Array.prototype.slice.call(doc.body.childNodes));
  }

  // "/" jumps to the search box (unless typing somewhere).
  document.addEventListener('keydown', function (e) {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = $('#search-input');
    if (box) {
      e.preventDefault();
      box.focus();
      box.select();
    }
  });

  // --- Signing in -------------------------------------------------------------------------

  // The page that ends a popup sign-in hands its one-time code to the framed page that opened
  // the popup (same origin only), then closes.
  function finishPopup() {
    var code = document.body && document.body.getAttribute('data-handoff');
    if (!code) return;
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage({ type: 'vault-login', code: code }, location.origin);
      window.close();
    }
  }

  // Inside an iframe (a Hugging Face Space page) the provider refuses to be framed, so the
  // sign-in runs in a popup; its code comes back as a message and buys this frame a session.
  function setupSignIn() {
    var link = $('#sign-in');
    if (!link) return;
    var status = document.createElement('p');
    status.className = 'error';
    status.setAttribute('role', 'alert');
    link.parentNode.insertAdjacentElement('afterend', status);
    var framed;
    try { framed = window.top !== window.self; } catch (e) { framed = true; }
    if (framed) {
      link.addEventListener('click', function (e) {
        e.preventDefault();
        var popup = window.open(link.getAttribute('data-popup-href'), 'vault-login', 'popup,width=520,height=720');
        if (!popup) say(status, 'The sign-in window was blocked. Allow pop-ups for this page, or open the app in its own tab.');
      });
    }
    window.addEventListener('message', async function (e) {
      if (e.origin !== location.origin) return;
      var m = e.data;
      if (!m || m.type !== 'vault-login' || typeof m.code !== 'string') return;
      var resp;
      try {
        resp = await fetch('/login/handoff', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ code: m.code }),
          credentials: 'same-origin',
        });
      } catch (err) {
        say(status, 'The server could not be reached. Try signing in again.');
        return;
      }
      if (resp.ok) {
        location.href = safeNext(new URLSearchParams(location.search).get('next'));
      } else {
        say(status, 'Signing in did not complete. Try again.');
      }
    });
  }

  // --- Note page --------------------------------------------------------------------------

  function setupDelete() {
    var btn = $('#delete');
    if (!btn) return;
    var errEl = $('#note-error');
    btn.addEventListener('click', async function () {
      var path = btn.getAttribute('data-path');
      if (!window.confirm('Delete the note "' + path + '"?')) return;
      btn.disabled = true;
      var res = await api('DELETE', '/api/notes', {
        path: path,
        if_version: Number(btn.getAttribute('data-version')),
      });
      var folder = btn.getAttribute('data-folder-url') || '/browse';
      if (res.ok || res.status === 404) {
        location.href = folder;
        return;
      }
      btn.disabled = false;
      if (res.status === 409) {
        say(errEl, 'This note changed since you opened it, so it was not deleted. Reload the page to see the current version.');
      } else {
        say(errEl, errorText(res));
      }
    });
  }

  // --- Editor -----------------------------------------------------------------------------

  function setupEditor() {
    var form = $('#editor');
    if (!form) return;
    var pathEl = $('#editor-path');
    var titleEl = $('#editor-title');
    var bodyEl = $('#editor-body');
    var preview = $('#preview');
    var saveBtn = $('#save');
    var errEl = $('#editor-error');
    var conflict = $('#conflict');
    var isNew = form.getAttribute('data-mode') === 'new';
    var originalTitle = form.getAttribute('data-original-title') || '';
    // The version this page edits: the precondition of the next save (0 = must not exist).
    var version = Number(form.getAttribute('data-version') || 0);
    var dirty = false;
    var leaving = false;

    // Live preview: debounced, and only the answer to the latest request is shown.
    var timer = null;
    var latest = 0;
    async function refreshPreview() {
      var mine = ++latest;
      var res = await api('POST', '/api/preview', { body: bodyEl.value });
      if (mine === latest && res.ok && typeof res.data.html === 'string') showRendered(preview, res.data.html);
    }
    bodyEl.addEventListener('input', function () {
      dirty = true;
      clearTimeout(timer);
      timer = setTimeout(refreshPreview, 300);
    });
    titleEl.addEventListener('input', function () { dirty = true; });
    pathEl.addEventListener('input', function () { dirty = true; });

    window.addEventListener('beforeunload', function (e) {
      if (dirty && !leaving) {
        e.preventDefault();
        e.returnValue = '';
      }
    });

    function leave(url) {
      leaving = true;
      location.href = url;
    }

    async function save() {
      var path = pathEl.value.trim();
      if (!path || path.charAt(path.length - 1) === '/') {
        say(errEl, 'Give the note a name, e.g. ideas/first-note.md.');
        pathEl.focus();
        return;
      }
      if (!/\.md$/i.test(path)) {
        path += '.md';
        pathEl.value = path;
      }
      var payload = { path: path, body: bodyEl.value, if_version: version };
      var title = titleEl.value.trim();
      // An unchanged title is left out, so the note keeps its frontmatter exactly as it is.
      if (isNew ? title : title !== originalTitle) payload.title = title;
      saveBtn.disabled = true;
      say(errEl, '');
      var res = await api('POST', '/api/notes', payload);
      saveBtn.disabled = false;
      if (res.ok) {
        dirty = false;
        leave(noteUrl(res.data.path || path));
        return;
      }
      if (res.status === 409 && res.data.code === 'conflict') {
        showConflict(payload, res.data.current || null);
        return;
      }
      say(errEl, errorText(res));
    }

    // Both versions side by side; nothing is written until the person chooses.
    function showConflict(payload, current) {
      $('#conflict-mine').textContent = payload.body;
      $('#conflict-theirs').textContent = current ? current.body : '';
      $('#conflict-version').textContent = current ? '(version ' + current.version + ')' : '(deleted)';
      var message;
      if (!current) {
        message = 'The note was deleted elsewhere since you opened it. Nothing was overwritten.';
      } else if (version === 0) {
        message = 'A note already exists at ' + current.path + ' (version ' + current.version + '). Nothing was overwritten.';
      } else {
        message = 'Version ' + current.version + ' was saved elsewhere since you opened version ' + version + '. Nothing was overwritten.';
      }
      say($('#conflict-message'), message);
      conflict.hidden = false;
      conflict.scrollIntoView({ block: 'start' });
      conflict.focus();
      $('#overwrite').onclick = function () {
        conflict.hidden = true;
        // The version seen now becomes the precondition: a further change elsewhere in the
        // meantime is again a conflict, never lost.
        version = current ? current.version : 0;
        save();
      };
      $('#discard').onclick = function () {
        dirty = false;
        leave(current ? noteUrl(current.path) : form.getAttribute('data-cancel-url') || '/browse');
      };
    }

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      save();
    });
    document.addEventListener('keydown', function (e) {
      if ((e.ctrlKey || e.metaKey) && (e.key === 's' || e.key === 'S')) {
        e.preventDefault();
        if (conflict.hidden) save();
      }
    });
  }

  // --- Account: tokens --------------------------------------------------------------------

  function humanTtl(ttl) {
    var m = /^(\d+)\s*([a-z]+)$/.exec(ttl);
    if (!m) return ttl;
    var n = Number(m[1]);
    var unit = { h: 'hour', d: 'day', w: 'week', m: 'minute', y: 'year' }[m[2]] || m[2];
    return n + ' ' + unit + (n === 1 ? '' : 's');
  }

  function when(secs) {
    return secs ? new Date(secs * 1000).toLocaleString() : '—';
  }

  function setupAccount() {
    var form = $('#token-form');
    if (!form) return;
    var list = $('#token-list');
    var table = $('#token-table');
    var empty = $('#token-list-empty');
    var errEl = $('#token-error');
    var ttl = $('#token-ttl');
    var panel = $('#new-token-panel');
    var createBtn = $('#create-token');

    function showCount() {
      var n = list.children.length;
      table.hidden = n === 0;
      empty.hidden = n > 0;
      say(empty, 'No tokens yet.');
    }

    // 'read', 'write', or a folder-scoped token's scope claim
    // ('notes:write:work notes:read:My%20Notes'), in words.
    function scopeText(scope) {
      if (scope === 'write') return 'read and write';
      if (scope === 'read') return 'read only';
      var parts = String(scope || '').split(' ').filter(Boolean).map(function (s) {
        var m = /^notes:(read|write)(?::(.*))?$/.exec(s);
        if (!m) return s;
        var where = m[2] === undefined ? 'the whole vault' : decodeURIComponent(m[2]) + '/';
        return (m[1] === 'write' ? 'read and write ' : 'read ') + where;
      });
      return parts.join('; ');
    }

    function row(t) {
      return actionRow({
        className: 'token-row',
        id: t.id,
        cells: [
          t.name,
          scopeText(t.scope),
          when(t.created_at),
          when(t.expires_at),
          t.last_used_at ? when(t.last_used_at) : 'never',
        ],
        button: 'revoke danger',
        label: 'Revoke',
        ariaLabel: 'Revoke the token ' + t.name,
        confirm: 'Revoke the token "' + t.name + '"? Clients using it lose access at once.',
        url: '/api/tokens/' + encodeURIComponent(t.id),
        done: showCount,
        errEl: errEl,
      });
    }

    async function load() {
      var res = await api('GET', '/api/tokens');
      if (!res.ok) {
        say(empty, errorText(res));
        return;
      }
      list.replaceChildren.apply(list, (res.data.tokens || []).map(row));
      showCount();
      var choices = res.data.ttl_choices;
      if (Array.isArray(choices) && choices.length) {
        var wanted = choices.indexOf(ttl.value) >= 0 ? ttl.value : (choices.indexOf('7d') >= 0 ? '7d' : choices[choices.length - 1]);
        ttl.replaceChildren.apply(ttl, choices.map(function (c) {
          var o = document.createElement('option');
          o.value = c;
          o.textContent = humanTtl(c);
          return o;
        }));
        ttl.value = wanted;
      }
    }

    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      var name = $('#token-name').value.trim();
      if (!name) {
        say(errEl, 'Give the token a name, e.g. the client it is for.');
        $('#token-name').focus();
        return;
      }
      var scope = $('#token-scope-read').checked ? 'read' : 'write';
      var folders = $('#token-folders').value.split('\n')
        .map(function (f) { return f.trim(); })
        .filter(function (f) { return f !== ''; });
      createBtn.disabled = true;
      say(errEl, '');
      var res = await api('POST', '/api/tokens',
        { name: name, ttl: ttl.value, scope: scope, folders: folders });
      createBtn.disabled = false;
      if (!res.ok || typeof res.data.token !== 'string') {
        say(errEl, errorText(res));
        return;
      }
      var token = res.data.token;
      $('#new-token').textContent = token;
      // The set-up snippets were rendered with a placeholder; keep that text to fill again
      // for the next token.
      document.querySelectorAll('pre.setup code').forEach(function (code) {
        if (!code.hasAttribute('data-template')) code.setAttribute('data-template', code.textContent);
        code.textContent = code.getAttribute('data-template').split('YOUR_TOKEN').join(token);
      });
      panel.hidden = false;
      panel.focus();
      $('#token-name').value = '';
      $('#token-folders').value = '';
      list.insertBefore(row(res.data), list.firstChild);
      showCount();
    });

    load();
    setupClients(errEl);
  }

  // A table row of text cells and one button that DELETEs `url` after a confirmation, then
  // removes the row (tokens and connected applications share it).
  function actionRow(o) {
    var tr = document.createElement('tr');
    tr.className = o.className;
    tr.setAttribute('data-id', o.id);
    o.cells.forEach(function (text) {
      var td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    });
    var td = document.createElement('td');
    var b = document.createElement('button');
    b.type = 'button';
    b.className = o.button;
    b.textContent = o.label;
    b.setAttribute('aria-label', o.ariaLabel);
    b.addEventListener('click', async function () {
      if (!window.confirm(o.confirm)) return;
      b.disabled = true;
      var res = await api('DELETE', o.url);
      if (res.ok || res.status === 404) {
        tr.remove();
        o.done();
      } else {
        b.disabled = false;
        say(o.errEl, errorText(res));
      }
    });
    td.appendChild(b);
    tr.appendChild(td);
    return tr;
  }

  // Connected applications (OAuth grants): listed, and disconnected one by one.
  function setupClients(errEl) {
    var list = $('#client-list');
    if (!list) return;
    var table = $('#client-table');
    var empty = $('#client-list-empty');

    function showCount() {
      var n = list.children.length;
      table.hidden = n === 0;
      empty.hidden = n > 0;
      say(empty, 'No applications connected.');
    }

    function row(c) {
      var access = (c.scope || '').split(' ').indexOf('notes:write') >= 0 ? 'read and write' : 'read only';
      return actionRow({
        className: 'client-row',
        id: c.id,
        cells: [c.name + ' (' + c.client_id + ')', access, when(c.created_at), when(c.last_used_at)],
        button: 'disconnect danger',
        label: 'Disconnect',
        ariaLabel: 'Disconnect ' + c.name,
        confirm: 'Disconnect "' + c.name + '"? It loses access at once.',
        url: '/api/clients/' + encodeURIComponent(c.id),
        done: showCount,
        errEl: errEl,
      });
    }

    (async function () {
      var res = await api('GET', '/api/clients');
      if (!res.ok) {
        say(empty, errorText(res));
        return;
      }
      list.replaceChildren.apply(list, (res.data.clients || []).map(row));
      showCount();
    })();
  }

  // --- Copy buttons -----------------------------------------------------------------------

  document.addEventListener('click', function (e) {
    var btn = e.target.closest && e.target.closest('button.copy');
    if (!btn) return;
    var source = document.getElementById(btn.getAttribute('data-copy'));
    if (!source) return;
    var text = source.textContent;
    var done = function (ok) {
      var label = btn.textContent;
      btn.textContent = ok ? 'Copied' : 'Press Ctrl+C';
      setTimeout(function () { btn.textContent = label; }, 1500);
    };
    // Fallback where the Clipboard API is unavailable (plain http, a frame without the
    // permission): select the text so a keyboard copy takes it.
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (err) { ok = false; }
      done(ok);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, select);
    } else {
      select();
    }
  });

  // --- Your data: import an archive, delete the account ------------------------------------

  function setupAccountData() {
    var form = $('#import-form');
    if (form) {
      form.addEventListener('submit', async function (e) {
        e.preventDefault();
        var file = $('#import-file').files[0];
        var errEl = $('#import-error');
        say(errEl, '');
        if (!file) return;
        var button = $('#import-submit');
        button.disabled = true;
        button.textContent = 'Importing…';
        var resp, data = {};
        try {
          resp = await fetch('/api/import', {
            method: 'POST',
            headers: { 'Content-Type': 'application/octet-stream', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
            body: file,
            credentials: 'same-origin',
          });
          data = await resp.json().catch(function () { return {}; });
        } catch (err) {
          resp = { ok: false, status: 0 };
          data = { message: 'The server could not be reached. Check the connection and try again.' };
        }
        button.disabled = false;
        button.textContent = 'Import';
        if (!resp.ok) {
          say(errEl, errorText({ status: resp.status, data: data }));
          return;
        }
        var notes = data.imported.filter(function (i) { return i.kind === 'note'; }).length;
        say($('#import-summary'), 'Imported ' + notes + ' notes and ' + (data.imported.length - notes) +
          ' attachments; ' + data.skipped.length + ' skipped.');
        var list = $('#import-skipped');
        list.replaceChildren();
        data.skipped.forEach(function (s) {
          var li = document.createElement('li');
          var code = document.createElement('code');
          code.textContent = s.path;
          li.appendChild(code);
          li.appendChild(document.createTextNode(': ' + s.detail));
          list.appendChild(li);
        });
        $('#import-result').hidden = false;
      });
    }
    var del = $('#delete-account-form');
    if (!del) return;
    var confirmBox = $('#delete-confirm');
    var delBtn = $('#delete-account');
    var userId = del.getAttribute('data-user-id');
    confirmBox.addEventListener('input', function () {
      delBtn.disabled = confirmBox.value !== userId;
    });
    del.addEventListener('submit', async function (e) {
      e.preventDefault();
      if (confirmBox.value !== userId) return;
      delBtn.disabled = true;
      var res = await api('POST', '/api/account/delete', { confirm: confirmBox.value });
      if (res.ok) {
        location.assign('/');
      } else {
        delBtn.disabled = false;
        say($('#delete-error'), errorText(res));
      }
    });
  }

  finishPopup();
  setupSignIn();
  setupDelete();
  setupEditor();
  setupAccount();
  setupAccountData();
})();
