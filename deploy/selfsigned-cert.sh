#!/bin/sh
# A self-signed TLS certificate for nginx when the operator has none yet (browsers will warn until a real one,
# e.g. from Let's Encrypt or the house's own CA, replaces it). Writes fullchain.pem and privkey.pem into
# TLS_DIR (default deploy/tls, what docker-compose.yml mounts), for the host names given (default: localhost).
#
#   deploy/selfsigned-cert.sh hub.example.lan 192.168.1.20
set -eu

TLS_DIR=${TLS_DIR:-$(dirname "$0")/tls}
DAYS=${DAYS:-825}
[ "$#" -gt 0 ] || set -- localhost

san=""
for name in "$@"; do
    case "$name" in
        *[!0-9.:]*) entry="DNS:$name" ;;
        *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
done

mkdir -p "$TLS_DIR"
umask 077
openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "$DAYS" \
    -subj "/CN=$1" -addext "subjectAltName=$san" \
    -keyout "$TLS_DIR/privkey.pem" -out "$TLS_DIR/fullchain.pem" 2>/dev/null
# nginx's master process (root) reads the key before dropping privileges, so it can stay private.
chmod 600 "$TLS_DIR/privkey.pem"
chmod 644 "$TLS_DIR/fullchain.pem"
echo "wrote $TLS_DIR/fullchain.pem and $TLS_DIR/privkey.pem for $san (valid $DAYS days)"
