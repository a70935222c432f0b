// Signed download links served by nginx itself ("verify at the edge, govern in the hub": docs/downloads.md).
//
// The hub writes one marker file per link nginx may serve on its own (recorded, not revoked, not capped) into
// $edge_markers, named by the link's signature: {"c": customer, "e": expiry text, "p": path, "x": expiry in epoch
// seconds, "f": the file under the downloads root, "id": link id}. A request whose customer, expiry and path are
// exactly the marker's, before its expiry, is served from the downloads root; anything else (no marker, a
// mismatch, expired, odd bytes) goes to the hub exactly as without this file. No key is needed here: the hub
// checked the signature when it issued the link, and the marker binds the whole URL to it.
//
// Only what njs 0.7.9 (Debian's libnginx-mod-http-js) and the official nginx image's newer njs both have: ES5
// syntax, fs.readFileSync, JSON.parse, js_set and js_var. njs keeps no state between requests (a fresh VM each).

var fs = require('fs');

var NO_EDGE = '/.edge-none';  // a name never under the downloads root: try_files falls through to the hub
var SIGNATURE = /^[A-Za-z0-9_-][A-Za-z0-9_.,-]{0,63}$/;

function file(r) {
    var v = r.variables;
    if (r.method !== 'GET' && r.method !== 'HEAD') {
        return NO_EDGE;
    }
    var raw = v.request_uri;
    var prefix = v.edge_prefix;
    var query = raw.indexOf('?');
    if (query !== -1) {
        raw = raw.slice(0, query);
    }
    if (raw.slice(0, prefix.length) !== prefix) {
        return NO_EDGE;
    }
    var rest;
    try {
        // As the hub reads it: the path below the prefix percent-decoded once, then cut into its four parts.
        rest = decodeURIComponent(raw.slice(prefix.length));
    } catch (e) {
        return NO_EDGE;
    }
    var first = rest.indexOf('/');
    var second = rest.indexOf('/', first + 1);
    var third = rest.indexOf('/', second + 1);
    if (first < 1 || second < first + 2 || third < second + 2) {
        return NO_EDGE;
    }
    var signature = rest.slice(0, first);
    if (!SIGNATURE.test(signature)) {
        return NO_EDGE;
    }
    var marker;
    try {
        marker = JSON.parse(fs.readFileSync(v.edge_markers + signature, 'utf8'));
    } catch (e) {
        return NO_EDGE;  // no marker: unknown, revoked, capped, deleted or forged; the hub decides
    }
    if (marker.c !== rest.slice(first + 1, second) || marker.e !== rest.slice(second + 1, third)
        || marker.p !== rest.slice(third + 1) || !(Date.now() < marker.x * 1000)) {
        return NO_EDGE;
    }
    v.edge_link = String(marker.id);
    v.edge_disposition = marker.d;
    return '/' + marker.f;
}

export default {file: file};
