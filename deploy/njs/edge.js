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
// What a signature of either format is made of (downloads/signing.py); never '/', NUL or a leading '.'.
var SIGNATURE = /^[A-Za-z0-9_-][A-Za-z0-9_.,-]*$/;

function file(r) {
    if (r.method !== 'GET' && r.method !== 'HEAD') {
        return NO_EDGE;
    }
    var v = r.variables;
    var raw = v.request_uri;
    var prefix = v.edge_prefix;
    var query = raw.indexOf('?');
    if (query !== -1) {
        raw = raw.slice(0, query);
    }
    if (raw.slice(0, prefix.length) !== prefix) {
        return NO_EDGE;
    }
    // As the hub reads it: the path below the prefix percent-decoded once, then cut into its four parts.
    var rest = raw.slice(prefix.length);
    if (rest.indexOf('%') !== -1) {
        try {
            rest = decodeURIComponent(rest);
        } catch (e) {
            return NO_EDGE;  // not UTF-8: the hub answers it
        }
    }
    var first = rest.indexOf('/');
    var second = rest.indexOf('/', first + 1);
    var third = rest.indexOf('/', second + 1);
    if (first < 1 || first > 64 || second < first + 2 || third < second + 2) {
        return NO_EDGE;
    }
    var signature = rest.slice(0, first);
    // The marker's name: no leading '.' (no '..', never one of the hub's temp files), nothing a path could misread.
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
        return NO_EDGE;  // another URL under a known signature, or expired: the hub's answer
    }
    v.edge_link = String(marker.id);
    v.edge_disposition = marker.d;
    return '/' + marker.f;
}

export default {file: file};
