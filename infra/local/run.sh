#!/usr/bin/env bash
# `make run`: the local emulation. Every function runs under `cargo lambda watch` on
# 127.0.0.1:$PORT with the embedded store under $WATCHSTATE_DATA_DIR.
set -euo pipefail
PORT="${PORT:-9000}"
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
cargo build --workspace --bins --quiet

base="http://127.0.0.1:$PORT/lambda-url"
cat <<MSG

watchstate is starting on 127.0.0.1:$PORT (store: ${STORE:-sqlite}, data: $WATCHSTATE_DATA_DIR)
Admin key: $WATCHSTATE_ADMIN_KEY   (kept in $WATCHSTATE_DATA_DIR/admin-key unless set in WATCHSTATE_ADMIN_KEY)

Add a user and a backend, then paste the returned webhook_url into the media server:
  curl -X PUT -H "Authorization: Bearer \$KEY" $base/api/v1/users/me
  curl -X PUT -H "Authorization: Bearer \$KEY" $base/api/v1/users/me/backends/plex \\
       -d '{"type": "plex", "url": "http://plex.local:32400", "token": "...", "server_id": "..."}'
See README.md for Jellyfin, Emby and Tautulli.

MSG
if [ "${WATCHSTATE_DEMO:-1}" = "1" ]; then
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
fi
# `cargo lambda invoke` defaults to [::1]; forward that to the loopback we serve.
python3 "$(dirname "$0")/loopback6.py" "$PORT" &
exec cargo lambda watch -A 127.0.0.1 -P "$PORT"
