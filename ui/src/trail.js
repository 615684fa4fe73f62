// Trail's web UI: a few helpers on top of pages that work without them.
// Served from Trail itself under a Content-Security-Policy that allows
// only its own scripts; nothing here is needed to read or filter events.
(function () {
  'use strict';

  // The browser's time zone, for sessions whose link named none: kept in
  // a cookie that the server reads, and the page reloaded once to show it.
  function cookie(name) {
    var m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return m ? m[1] : null;
  }
  function rememberZone() {
    var tz;
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return;
    }
    if (!tz || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(tz) || cookie('trail_zone') === tz) {
      return;
    }
    document.cookie = 'trail_zone=' + tz + '; path=/ui; max-age=31536000; samesite=strict' +
      (location.protocol === 'https:' ? '; secure' : '');
    // Reload only when the cookie took and the page was shown in UTC for
    // want of a zone; a zone the server refuses is not asked again.
    if (cookie('trail_zone') === tz && tz !== 'UTC' && document.body.hasAttribute('data-ask-zone')) {
      location.reload();
    }
  }

  // Keys: / searches; [ and ] move the date range a period earlier or
  // later, - zooms out, u undoes a zoom into a histogram bar.
  function keys() {
    var links = { '[': 'earlier', ']': 'later', '-': 'zoom-out', 'u': 'undo-zoom' };
    document.addEventListener('keydown', function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) {
        return;
      }
      var t = e.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
        return;
      }
      if (e.key === '/') {
        var q = document.getElementById('q');
        if (q) {
          e.preventDefault();
          q.focus();
          q.select();
        }
        return;
      }
      var a = links[e.key] && document.getElementById(links[e.key]);
      if (a) {
        e.preventDefault();
        a.click();
      }
    });
  }

  // New events since the page loaded: counted every two seconds while the
  // page is visible, and announced above the list with a link that shows
  // them. Nothing on the page moves until the reader asks.
  function live() {
    var el = document.getElementById('live');
    if (!el || !window.fetch) {
      return;
    }
    var poll = el.getAttribute('data-poll');
    var show = el.getAttribute('data-show');
    var shown = -1;
    var delay = 2000;
    function render(n, more) {
      if (n === shown) {
        return;
      }
      shown = n;
      el.textContent = '';
      if (n === 0) {
        return;
      }
      var a = document.createElement('a');
      a.href = show;
      a.id = 'live-show';
      a.textContent = 'Show';
      el.appendChild(document.createTextNode((more ? n + '+ new events' : n === 1 ? '1 new event' : n + ' new events') + ' — '));
      el.appendChild(a);
    }
    function tick() {
      if (document.hidden) {
        setTimeout(tick, delay);
        return;
      }
      fetch(poll, { credentials: 'same-origin', headers: { Accept: 'application/json' } }).then(function (res) {
        if (res.status === 401 || res.status === 403 || res.status === 400) {
          return null; // signed out, or the view is gone: stop asking
        }
        if (!res.ok) {
          throw new Error(String(res.status));
        }
        return res.json();
      }).then(function (body) {
        if (body) {
          delay = 2000;
          render(body.count, body.more);
          setTimeout(tick, delay);
        }
      }).catch(function () {
        delay = Math.min(delay * 2, 60000);
        setTimeout(tick, delay);
      });
    }
    setTimeout(tick, delay);
  }

  // Suggestions for the Actor and Target fields: the organization's own
  // actors and targets, asked for once, when the field is first used.
  function suggest() {
    if (!window.fetch) {
      return;
    }
    var inputs = document.querySelectorAll('input[data-suggest]');
    Array.prototype.forEach.call(inputs, function (input) {
      var list = document.getElementById(input.getAttribute('list'));
      if (!list) {
        return;
      }
      function load() {
        input.removeEventListener('focus', load);
        fetch('/ui/suggest?field=' + encodeURIComponent(input.getAttribute('data-suggest')),
          { credentials: 'same-origin', headers: { Accept: 'application/json' } }).then(function (res) {
          return res.ok ? res.json() : null;
        }).then(function (body) {
          (body && body.values || []).forEach(function (s) {
            var o = document.createElement('option');
            o.value = s.value;
            o.label = s.label;
            list.appendChild(o);
          });
        }).catch(function () {});
      }
      input.addEventListener('focus', load);
    });
  }

  // The top actors, event types and target types of the view: counted
  // when the reader opens them, in place (the link beside them opens the
  // same counts as a page).
  function facets() {
    var d = document.getElementById('facets');
    var body = document.getElementById('facets-body');
    if (!d || !body || !window.fetch) {
      return;
    }
    var loaded = false;
    d.addEventListener('toggle', function () {
      if (!d.open || loaded) {
        return;
      }
      loaded = true;
      body.setAttribute('aria-busy', 'true');
      body.querySelector('p').textContent = 'Counting…';
      fetch(d.getAttribute('data-src'), { credentials: 'same-origin' }).then(function (res) {
        if (!res.ok) {
          throw new Error(String(res.status));
        }
        return res.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        body.textContent = '';
        Array.prototype.forEach.call(doc.body.childNodes, function (n) {
          body.appendChild(document.importNode(n, true));
        });
        body.removeAttribute('aria-busy');
      }).catch(function () {
        loaded = false;
        body.removeAttribute('aria-busy');
        body.querySelector('p').textContent = 'Trail could not count these events; close and open to try again.';
      });
    });
  }

  rememberZone();
  keys();
  live();
  suggest();
  facets();
})();
