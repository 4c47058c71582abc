# shellcheck shell=bash
# Sourced by infra/local/run.sh for `make run STORE=dynamodb`: the functions use
# DynamoDB, served by moto on 127.0.0.1:${MOTO_PORT:-5005}, instead of the embedded
# store. moto keeps everything in memory: the data is gone when `make run` stops.
#
# Starts moto_server, waits until it answers, creates the table the SAM template
# declares (key pk/sk, on-demand, TTL on expires_at) and exports what the AWS SDK
# reads: TABLE_NAME, AWS_ENDPOINT_URL, AWS_REGION and dummy credentials.

MOTO_PORT="${MOTO_PORT:-5005}"
TABLE_NAME="${TABLE_NAME:-watchstate}"
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
export MOTO_PORT TABLE_NAME AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION \
  AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

if ! command -v moto_server >/dev/null 2>&1; then
  echo "moto_server not found: pip install 'moto[server]'" >&2
  exit 1
fi

moto_answers() {
  python3 - "$MOTO_PORT" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY
}

if moto_answers; then
  echo "Something already listens on 127.0.0.1:$MOTO_PORT; using it as DynamoDB." >&2
else
  moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WATCHSTATE_DATA_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  # Stop moto with this script: on any exit before `exec`, and afterwards (exec drops
  # traps) when the process that replaces this shell ends.
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  (
    while kill -0 $$ 2>/dev/null; do sleep 1; done
    kill "$MOTO_PID" 2>/dev/null || true
  ) >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    moto_answers && break
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited; see $WATCHSTATE_DATA_DIR/moto.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if ! moto_answers; then
    echo "moto_server did not answer on 127.0.0.1:$MOTO_PORT" >&2
    exit 1
  fi
fi

python3 - "$AWS_ENDPOINT_URL" "$TABLE_NAME" <<'PY'
import sys
import boto3

endpoint, table = sys.argv[1], sys.argv[2]
ddb = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
try:
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=table)
except ddb.exceptions.ResourceInUseException:
    pass
ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
print(f"DynamoDB table {table} ready at {endpoint}")
PY
