// Signed download links served by nginx itself ("verify at the edge, govern in the hub": docs/downloads.md).
//
// The hub writes one marker file per link nginx may serve on its own (recorded, not revoked, not capped) into
// $edge_markers, named by the link's signature, five lines: "<customer>/<expiry>/<path>" as the URL carries them,
// the expiry in epoch seconds, the link id, the file under the downloads root, its Content-Disposition. A request
// whose customer, expiry and path are exactly the marker's, before its expiry, is served from the downloads root;
// anything else (no marker, a mismatch, expired, odd bytes) goes to the hub exactly as without this file. No key
// is needed here: the hub checked the signature when it issued the link, and the marker binds the whole URL to it.
//
// Only what njs 0.7.9 (Debian's libnginx-mod-http-js) and the official nginx image's newer njs both have: ES5
// syntax, fs.readFileSync, js_set and js_var. njs keeps no state between requests (a fresh VM each, which also
// runs this file's top level again: keep it to the require).

var fs = require('fs');

var NO_EDGE = '';  // names the root itself, never a file: try_files falls through to the hub

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
    // The marker's name: no '/' (cut above), no leading '.' (no '..', never one of the hub's temp files), no NUL.
    // (No regular expression: njs 0.7 runs a module's top level, compiling one, again for every request.)
    if (signature.charAt(0) === '.' || signature.indexOf('\0') !== -1) {
        return NO_EDGE;
    }
    var marker;
    try {
        marker = fs.readFileSync(v.edge_markers + signature, 'utf8');
    } catch (e) {
        return NO_EDGE;  // no marker: unknown, revoked, capped, deleted or forged; the hub decides
    }
    // Its first line is customer/expiry/path exactly as this URL must carry them; then the expiry in epoch
    // seconds, the link id, the file under the root and the Content-Disposition (downloads/edge.py, marker_text).
    var tail = rest.slice(first + 1);
    if (marker.charAt(tail.length) !== '\n' || marker.slice(0, tail.length) !== tail || tail.indexOf('\n') !== -1) {
        return NO_EDGE;  // another URL under a known signature: the hub's answer
    }
    var fields = marker.slice(tail.length + 1).split('\n');
    if (fields.length < 4 || !fields[2] || !(Date.now() < fields[0] * 1000)) {
        return NO_EDGE;  // expired (or a marker from another version): the hub's answer
    }
    v.edge_link = fields[1];
    v.edge_disposition = fields[3];
    return '/' + fields[2];
}

export default {file: file};
