#!/usr/bin/env bash
# `make run`: the local emulation. Every function runs under `cargo lambda watch` on
# $HOST:$PORT (127.0.0.1:9000 unless said otherwise; HOST=0.0.0.0 serves the LAN) with
# the embedded store under $WATCHSTATE_DATA_DIR. WATCHSTATE_DEMO=1 also creates the
# `demo` person whose backends the sample events under events/ address.
set -euo pipefail
PORT="${PORT:-9000}"
HOST="${HOST:-127.0.0.1}"
export WATCHSTATE_DATA_DIR="${WATCHSTATE_DATA_DIR:-.watchstate}"
mkdir -p "$WATCHSTATE_DATA_DIR"
chmod 700 "$WATCHSTATE_DATA_DIR"

keep_secret() { # name file: the env value, else the kept one, else a new one
  local file="$WATCHSTATE_DATA_DIR/$2"
  if [ -n "${!1:-}" ]; then printf '%s' "${!1}"; return; fi
  if [ ! -s "$file" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$file")
  fi
  tr -d '\n' < "$file"
}
WATCHSTATE_ADMIN_KEY="$(keep_secret WATCHSTATE_ADMIN_KEY admin-key)"
# Fixed locally so the sample events under events/ carry working tokens; a token's
# secrecy rests on its backend's random nonce, kept in the (private) data dir.
WATCHSTATE_TOKEN_SECRET="${WATCHSTATE_TOKEN_SECRET:-watchstate-local}"
export WATCHSTATE_ADMIN_KEY WATCHSTATE_TOKEN_SECRET

if [ "${STORE:-sqlite}" = "dynamodb" ]; then
  # shellcheck source=infra/local/dynamodb.sh
  source "$(dirname "$0")/dynamodb.sh"
fi

echo "Building the functions (the first build takes a few minutes)..."
# As `cargo lambda watch` builds them (the default members): it then starts them at once.
cargo build --bins --quiet

# This machine reaches the functions on loopback whatever HOST is (0.0.0.0 includes
# it); a specific address is reached as itself.
case "$HOST" in
  0.0.0.0 | 127.0.0.1 | localhost) local_host=127.0.0.1 ;;
  *) local_host="$HOST" ;;
esac
base="http://$local_host:$PORT/lambda-url"
lan=""
if [ "$HOST" = "0.0.0.0" ]; then
  for ip in $(hostname -I 2>/dev/null || true); do
    case "$ip" in *:*) ;; *) lan="$lan  http://$ip:$PORT/lambda-url/api/"$'\n' ;; esac
  done
  [ -n "$lan" ] && lan="From other machines of the LAN (webhook URLs then use that address):"$'\n'"$lan"
fi
cat <<MSG

watchstate is starting on $HOST:$PORT (store: ${STORE:-sqlite}, data: $WATCHSTATE_DATA_DIR)
Admin key: $WATCHSTATE_ADMIN_KEY   (kept in $WATCHSTATE_DATA_DIR/admin-key unless set in WATCHSTATE_ADMIN_KEY)

Console: $base/api/   (sign in with the admin key; add people and backends, copy webhook URLs)
$lan
Or with curl: add a person and a backend, then paste the returned webhook_url into the media server:
  curl -X PUT -H "Authorization: Bearer \$KEY" $base/api/v1/users/me
  curl -X PUT -H "Authorization: Bearer \$KEY" $base/api/v1/users/me/backends/plex \\
       -d '{"type": "plex", "url": "http://plex.local:32400", "token": "...", "server_id": "..."}'
See README.md for Jellyfin, Emby and Tautulli.

MSG
# The demo person only when asked: a person's real data dir holds their own people.
if [ "${WATCHSTATE_DEMO:-0}" = "1" ]; then
  # Once the api answers, make sure the demo backends the sample events address exist.
  (
    for _ in $(seq 1 600); do
      curl -sf "$base/api/v1/health" >/dev/null 2>&1 && break
      sleep 1
    done
    auth="Authorization: Bearer $WATCHSTATE_ADMIN_KEY"
    curl -sf -X PUT -H "$auth" "$base/api/v1/users/demo" >/dev/null
    for b in plex jellyfin emby; do
      curl -sf -H "$auth" "$base/api/v1/users/demo/backends/$b" >/dev/null 2>&1 ||
        curl -sf -X PUT -H "$auth" "$base/api/v1/users/demo/backends/$b" \
          -d "{\"type\": \"$b\", \"webhook_nonce\": \"demo-$b-nonce\"}" >/dev/null
    done
    echo "Demo user 'demo' ready: cargo lambda invoke webhook --data-file events/webhook-plex-scrobble.json"
  ) &
else
  echo "(WATCHSTATE_DEMO=1 make run also creates the 'demo' person the sample events under events/ address.)"
fi
# `cargo lambda invoke` defaults to [::1]; forward that to the loopback we serve.
python3 "$(dirname "$0")/loopback6.py" "$PORT" &
exec cargo lambda watch -A "$HOST" -P "$PORT"
