/*
 * drip-bridge device mode: an Analytics.js 2.0 (analytics-next) plugin that hands
 * identify and track to Drip's own tag (`_dcq`) in the page.
 *
 *   <script src="https://<bridge>/drip.js"></script>
 *   analytics.register(DripBridge)
 *
 * The bridge fills in `bridge` below: the account, the tag's URL, the campaign, and
 * `rules`, the server mapping's own tables (app/mapping/device.py), so fields are
 * named and revenue counted exactly as the server does. The plugin runs in the
 * enrichment step, before the event leaves for the bridge in cloud mode, so it can
 * mark what it handed to Drip's tag; the bridge then skips that copy
 * (`sent_by_device_mode`) instead of sending it to Drip a second time. If the tag
 * cannot load (an ad blocker), nothing is marked and cloud mode delivers as usual.
 */
(function (bridge) {
  'use strict';
  var rules = bridge.rules;
  var EMAIL = new RegExp('^(?:' + rules.email + ')$');
  var NUMBER = new RegExp('^(?:' + rules.revenue.number + ')$');
  var CAMPAIGN = new RegExp('^(?:' + rules.campaignId + ')$');
  var CAMEL = new RegExp(rules.key.camel, 'g');
  var EDGE = new RegExp(rules.key.edge, 'g');
  var INNER = new RegExp(rules.key.inner, 'g');
  var INT = /^\s*[-+]?\d{1,10}\s*$/;
  var tagReady = false;

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  function dig(data, path) {
    for (var i = 0; i < path.length; i++) {
      if (!isObject(data)) return undefined;
      data = data[path[i]];
    }
    return data === null ? undefined : data;
  }

  // Segment's rule for `integrations` (guides/filtering-data), as the server applies it.
  function enabled(integrations) {
    var all = isObject(integrations) ? integrations : {};
    var setting = all[rules.destination];
    if (setting === false) return false;
    var everything = 'All' in all ? all.All : all.all;
    return !(everything === false && !(setting === true || isObject(setting)));
  }

  // Drip keys, as app/mapping/fields.py `normalise_key` makes them.
  function normaliseKey(key) {
    var plain = String(key).normalize('NFKD').replace(/\p{Mn}/gu, '');
    var snake = plain.replace(CAMEL, '_').toLowerCase().replace(EDGE, '').replace(INNER, '_');
    while (snake.indexOf(rules.key.reserved) === 0) snake = snake.slice(rules.key.reserved.length);
    return snake;
  }

  function sortedJson(value) {
    if (Array.isArray(value)) return '[' + value.map(sortedJson).join(',') + ']';
    if (isObject(value)) {
      return '{' + Object.keys(value).sort().map(function (k) {
        return JSON.stringify(k) + ':' + sortedJson(value[k]);
      }).join(',') + '}';
    }
    return JSON.stringify(value);
  }

  // A custom-field value: scalars as sent, objects as compact sorted JSON; undefined: dropped.
  function fieldValue(value) {
    if (value === null || value === undefined || typeof value === 'boolean') return value;
    if (typeof value === 'number') return isFinite(value) ? value : undefined;
    var text = typeof value === 'string' ? value : isObject(value) || Array.isArray(value)
      ? sortedJson(value) : undefined;
    return text === undefined || text.length > rules.maxValueChars ? undefined : text;
  }

  // Normalised key -> value; when two keys normalise alike, the one in normal form wins.
  function collectFields(entries) {
    var groups = {};
    entries.forEach(function (entry) {
      var key = normaliseKey(entry.key);
      var value = fieldValue(entry.value);
      if (!key || value === undefined || value === null) return;
      (groups[key] = groups[key] || []).push({ entry: entry, value: value });
    });
    var fields = {};
    Object.keys(groups).forEach(function (key) {
      var ranked = groups[key].slice().sort(function (a, b) {
        var x = [a.entry.key !== key ? 1 : 0, a.entry.key, a.entry.depth];
        var y = [b.entry.key !== key ? 1 : 0, b.entry.key, b.entry.depth];
        for (var i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
        return 0;
      });
      fields[key] = ranked[0].value;
    });
    return fields;
  }

  function entriesOf(data, depth, skip) {
    return Object.keys(data).filter(function (k) { return skip.indexOf(k) < 0; })
      .map(function (k) { return { key: k, value: data[k], depth: depth }; });
  }

  var COERCE = {
    text: function (v) {
      if (typeof v === 'number' && isFinite(v)) return String(v);
      if (typeof v !== 'string') return undefined;
      return v.trim() || undefined;
    },
    bool: function (v) {
      if (typeof v === 'boolean') return v;
      var t = typeof v === 'string' ? v.trim().toLowerCase() : '';
      return t === 'true' ? true : t === 'false' ? false : undefined;
    },
    int: function (v) {
      if (typeof v === 'string' && INT.test(v)) v = parseInt(v, 10);
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
      return Math.abs(v) < rules.revenue.below ? v : undefined;
    },
    consent: function (v) {
      if (typeof v === 'boolean') return v ? 'granted' : 'denied';
      var t = typeof v === 'string' ? v.trim().toLowerCase() : '';
      return t === 'granted' || t === 'denied' ? t : undefined;
    },
    status: function (v) {
      var t = typeof v === 'string' ? v.trim().toLowerCase() : '';
      return rules.statuses.indexOf(t) >= 0 ? t : undefined;
    }
  };

  function firstUsable(event, paths, coerce) {
    for (var i = 0; i < paths.length; i++) {
      var raw = dig(event, paths[i]);
      var value = raw === undefined ? undefined : coerce(raw);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  function asEmail(v) {
    if (typeof v !== 'string') return undefined;
    var t = v.trim();
    return t.length <= rules.maxEmail && EMAIL.test(t) ? t : undefined;
  }

  function tagList(value) {
    var items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : [];
    var tags = [];
    items.forEach(function (item) {
      var tag = COERCE.text(item);
      if (tag && tags.indexOf(tag) < 0) tags.push(tag);
    });
    return tags;
  }

  // Dollars (a number or "$9.99") -> whole cents, half up, as app/mapping/values.py `as_cents`.
  function cents(value) {
    if (typeof value === 'boolean' || value === null || value === undefined) return undefined;
    var text = String(value).trim().replace(/^\$/, '').trim();
    if (text.length > 100 || !NUMBER.test(text)) return undefined;
    var exact = /^[-+]?\d*\.?\d*$/.test(text);
    var result;
    if (exact) {
      var negative = text[0] === '-';
      var parts = text.replace(/^[-+]/, '').split('.');
      var fraction = ((parts[1] || '') + '000').slice(0, 3);
      var whole = parseInt((parts[0] || '0') + fraction.slice(0, 2), 10);
      result = whole + (parseInt(fraction[2], 10) >= 5 ? 1 : 0);
      if (negative && result) return undefined;
    } else {
      result = Math.round(Number(text) * 100);
    }
    return result >= 0 && result < rules.revenue.below ? result : undefined;
  }

  function findEmail(event, own) {
    var email = asEmail(dig(event, own)) || asEmail(dig(event, ['context', 'traits', 'email']));
    return email || asEmail(event.userId);
  }

  function subscriber(event, email) {
    var traits = isObject(event.traits) ? event.traits : {};
    var record = { email: email };
    if (event.userId !== undefined && event.userId !== null && String(event.userId).trim()) {
      record.user_id = String(event.userId);
    }
    rules.fields.forEach(function (field) {
      var value = firstUsable(event, field[1], COERCE[field[2]]);
      if (value !== undefined) record[field[0]] = value;
    });
    var name = COERCE.text(dig(event, rules.name));
    if (name && !(record.first_name && record.last_name)) {
      var parts = name.match(/^(\S+)(?:\s+([\s\S]+))?$/);  // Python's split(None, 1)
      var split = { first_name: parts[1], last_name: parts[2] };
      Object.keys(split).forEach(function (k) { if (!(k in record) && split[k]) record[k] = split[k]; });
    }
    var tags = tagList(dig(event, rules.tags));
    if (tags.length) record.tags = tags;
    for (var i = 0; i < rules.removeTags.length; i++) {
      var raw = dig(event, rules.removeTags[i]);
      if (raw !== undefined) {
        var removed = tagList(raw);
        if (removed.length) record.remove_tags = removed;
        break;
      }
    }
    var entries = entriesOf(traits, 1, rules.notCustom);
    rules.nestedCustom.forEach(function (nested) {
      if (isObject(traits[nested])) entries = entries.concat(entriesOf(traits[nested], 2, []));
    });
    var custom = collectFields(entries);
    // Drip's tag takes custom fields beside the subscriber's own keys (js/_identify.md).
    Object.keys(custom).forEach(function (k) { if (!(k in record)) record[k] = custom[k]; });
    return record;
  }

  function campaign(event) {
    var settings = dig(event, ['integrations', rules.destination]);
    var given = isObject(settings) ? settings.campaignId : undefined;
    var id = given !== undefined ? String(given) : bridge.campaignId;
    return id && CAMPAIGN.test(id) ? id : undefined;
  }

  function eventProperties(event) {
    var properties = isObject(event.properties) ? event.properties : {};
    var props = collectFields(entriesOf(properties, 1, rules.revenue.dropped));
    var sent = props.value;
    delete props.value;
    var source = rules.revenue.property;
    var name = event.event.trim().toLowerCase();
    if (dig(properties, [source]) === undefined && name === rules.revenue.totalEvent) {
      source = rules.revenue.totalProperty;
    }
    var value = cents(dig(properties, [source]));
    if (value === undefined && sent !== undefined) {
      var whole = COERCE.int(sent);
      value = whole !== undefined && whole >= 0 ? whole : undefined;
    }
    if (value !== undefined) props.value = value;
    var when = event.timestamp ? new Date(event.timestamp) : null;
    if (when && !isNaN(when.getTime())) props.occurred_at = when.toISOString().slice(0, 19) + 'Z';
    return props;
  }

  // The `_dcq` calls for one Segment event (none: it is left to the bridge in cloud mode).
  function callsFor(event) {
    if (!enabled(event.integrations)) return [];
    if (event.type === 'identify') {
      var email = findEmail(event, ['traits', 'email']);
      if (!email) return [];
      var calls = [['identify', subscriber(event, email)]];
      var id = campaign(event);
      if (id) {
        var fields = { email: email };
        if (calls[0][1].user_id) fields.user_id = calls[0][1].user_id;
        calls.push(['subscribe', { campaign_id: id, fields: fields }]);
      }
      return calls;
    }
    if (event.type === 'track' && typeof event.event === 'string' && event.event.trim()) {
      if (rules.serverEvents.indexOf(event.event.trim().toLowerCase()) >= 0) return [];
      return [['track', event.event, eventProperties(event)]];
    }
    return [];
  }

  function handOver(ctx) {
    if (!tagReady) return ctx;
    var calls = callsFor(ctx.event);
    if (!calls.length) return ctx;
    calls.forEach(function (call) { window._dcq.push(call); });
    var event = ctx.event;
    var node = event;
    rules.mark.slice(0, -1).forEach(function (step) {
      if (!isObject(node[step])) node[step] = {};
      node = node[step];
    });
    node[rules.mark[rules.mark.length - 1]] = true;
    return ctx;
  }

  function loadTag() {
    window._dcq = window._dcq || [];
    window._dcs = window._dcs || {};
    window._dcs.account = bridge.account;
    return new Promise(function (resolve) {
      var script = document.createElement('script');
      script.async = true;
      script.src = bridge.tagUrl;
      script.onload = function () { tagReady = true; resolve(); };
      script.onerror = function () {
        console.warn('drip-bridge: Drip\'s tag did not load; events go to Drip through the bridge');
        resolve();
      };
      (document.head || document.documentElement).appendChild(script);
    });
  }

  function pass(ctx) { return ctx; }

  window.DripBridge = {
    name: 'Drip (drip-bridge)',
    type: 'enrichment',
    version: bridge.version,
    isLoaded: function () { return true; },
    load: loadTag,
    identify: handOver,
    track: handOver,
    page: pass,
    screen: pass,
    group: pass,
    alias: pass,
    callsFor: callsFor,
    rules: rules
  };
})(__BRIDGE__);
