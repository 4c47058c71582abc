//! What `infra/template.yaml` promises (issue 10), read from the template itself:
//! least privilege (each function's actions are exactly what
//! `watchstate::inbound::permissions` says its code calls, on its own resources), fan-out
//! through the push queue in batches, alarms, webhook routes, tracing, the access log,
//! timeouts, and the parameters and outputs deployments already use.

use std::collections::BTreeSet;

use serde_norway::{Mapping, Value};
use watchstate::inbound::permissions::{needed_actions, Function};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    serde_norway::from_str(&text).expect("the template is YAML")
}

fn resources(t: &Value) -> &Mapping {
    t["Resources"].as_mapping().expect("Resources")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["Resources"]
        .get(id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

/// A `!Ref X` / `!GetAtt X.Y` / `!Sub ..` value, as (tag, text).
fn tagged(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string(),
            match &t.value {
                Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap_or_default(),
            },
        )),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(seq) => seq.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Every action a function's `Policies` allow; panics on anything but explicit
/// statements (SAM's policy templates grant more than the code calls).
fn granted(t: &Value, f: Function) -> BTreeSet<String> {
    let props = &resource(t, f.logical_id())["Properties"];
    let mut out = BTreeSet::new();
    for policy in props["Policies"].as_sequence().expect("Policies") {
        let statements = policy
            .get("Statement")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| {
                panic!(
                    "{}: only explicit statements, got {policy:?}",
                    f.logical_id()
                )
            });
        for st in statements {
            assert_eq!(st["Effect"], Value::String("Allow".into()));
            let actions = strings(&st["Action"]);
            assert!(!actions.is_empty(), "{st:?}");
            for a in &actions {
                assert!(!a.contains('*'), "{}: wildcard action {a}", f.logical_id());
            }
            // Every resource is one of ours, never "*" (KMS: only through SSM).
            let res = match &st["Resource"] {
                Value::Sequence(s) => s.clone(),
                other => vec![other.clone()],
            };
            for r in &res {
                let (tag, text) = tagged(r).unwrap_or_else(|| {
                    panic!("{}: resource {r:?} is not one of ours", f.logical_id())
                });
                if text.contains(":key/*") {
                    assert_eq!(actions, ["kms:Decrypt"]);
                    let via = &st["Condition"]["StringEquals"]["kms:ViaService"];
                    assert!(
                        tagged(via).is_some_and(|(_, v)| v.starts_with("ssm.")),
                        "{st:?}"
                    );
                } else {
                    assert!(tag == "!GetAtt" || tag == "!Sub" || tag == "!Ref", "{tag}");
                }
            }
            out.extend(actions);
        }
    }
    out
}

#[test]
fn each_function_is_granted_exactly_what_its_code_calls() {
    let t = template();
    for f in Function::ALL {
        let want: BTreeSet<String> = needed_actions(f).into_iter().map(str::to_string).collect();
        let got = granted(&t, f);
        let extra: Vec<_> = got.difference(&want).collect();
        let missing: Vec<_> = want.difference(&got).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{}: granted but not called {extra:?}; called but not granted {missing:?}",
            f.logical_id()
        );
    }
}

#[test]
fn only_functions_that_call_media_servers_open_tokens() {
    let t = template();
    for f in Function::ALL {
        let g = granted(&t, f);
        assert_eq!(
            g.contains("kms:Decrypt"),
            f != Function::Webhook,
            "{}",
            f.logical_id()
        );
        assert_eq!(
            g.contains("kms:Encrypt"),
            f == Function::Api,
            "{}",
            f.logical_id()
        );
        let env = &resource(&t, f.logical_id())["Properties"]["Environment"]["Variables"];
        assert_eq!(
            env.get("WATCHSTATE_TOKEN_KEY_ID")
                .and_then(tagged)
                .map(|(_, v)| v),
            (f != Function::Webhook).then(|| "TokenKey".to_string()),
            "{}",
            f.logical_id()
        );
    }
    let key = &resource(&t, "TokenKey")["Properties"];
    assert_eq!(key["EnableKeyRotation"], Value::Bool(true));
}

#[test]
fn changes_reach_push_through_the_queue_in_batches() {
    let t = template();
    let rule = &resource(&t, "StateChangeRule")["Properties"];
    let target = &rule["Targets"][0];
    assert_eq!(tagged(&target["Arn"]).unwrap().1, "PushQueue.Arn");
    assert_eq!(
        tagged(&target["DeadLetterConfig"]["Arn"]).unwrap().1,
        "PushDeadLetterQueue.Arn"
    );
    let queue = &resource(&t, "PushQueue")["Properties"];
    let redrive = &queue["RedrivePolicy"];
    assert_eq!(
        tagged(&redrive["deadLetterTargetArn"]).unwrap().1,
        "PushDeadLetterQueue.Arn"
    );
    let receives = redrive["maxReceiveCount"].as_u64().unwrap();
    assert!((2..=10).contains(&receives), "{receives}");
    let push_timeout = resource(&t, "PushFunction")["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= push_timeout * 6);

    let esm = &resource(&t, "PushQueueToPush")["Properties"];
    assert_eq!(tagged(&esm["EventSourceArn"]).unwrap().1, "PushQueue.Arn");
    assert_eq!(tagged(&esm["BatchSize"]).unwrap().1, "PushBatchSize");
    assert_eq!(
        tagged(&esm["ScalingConfig"]["MaximumConcurrency"])
            .unwrap()
            .1,
        "PushMaxConcurrency"
    );
    assert_eq!(
        strings(&esm["FunctionResponseTypes"]),
        ["ReportBatchItemFailures"]
    );
    // Push is no longer invoked one event at a time.
    assert!(resource(&t, "PushFunction")["Properties"]
        .get("EventInvokeConfig")
        .is_none());
    assert!(resources(&t).get("StateChangeRuleInvokePush").is_none());
    let params = &t["Parameters"];
    assert!(params["PushBatchSize"]["Default"].as_u64().unwrap() >= 20);
    assert!(params["PushMaxConcurrency"]["MinValue"].as_u64().unwrap() >= 2);
}

/// Alarms by (namespace, metric) and what their first dimension names.
fn alarms(t: &Value) -> Vec<(String, String, String, Value)> {
    resources(t)
        .values()
        .filter(|r| r["Type"] == Value::String("AWS::CloudWatch::Alarm".into()))
        .map(|r| {
            let p = &r["Properties"];
            assert_eq!(
                tagged(&p["AlarmActions"][0]).map(|(_, v)| v),
                Some("AlarmTopic".into()),
                "{p:?}"
            );
            let dim = &p["Dimensions"];
            let last = dim
                .as_sequence()
                .and_then(|d| d.last())
                .cloned()
                .unwrap_or(Value::Null);
            (
                p["Namespace"].as_str().unwrap_or_default().to_string(),
                p["MetricName"].as_str().unwrap_or_default().to_string(),
                last["Name"].as_str().unwrap_or_default().to_string(),
                last["Value"].clone(),
            )
        })
        .collect()
}

fn has_alarm(all: &[(String, String, String, Value)], ns: &str, metric: &str, on: &str) -> bool {
    all.iter().any(|(n, m, _, v)| {
        n == ns
            && m == metric
            && (tagged(v).is_some_and(|(_, t)| t.starts_with(on)) || v.as_str() == Some(on))
    })
}

#[test]
fn alarms_cover_parked_changes_errors_throttles_the_rule_and_5xx() {
    let t = template();
    let topic = &resource(&t, "AlarmTopic")["Properties"];
    assert!(topic.get("Subscription").is_some());
    assert!(t["Parameters"].get("AlarmEmail").is_some());
    let all = alarms(&t);
    assert!(has_alarm(
        &all,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "PushDeadLetterQueue"
    ));
    assert!(has_alarm(
        &all,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "PushDeadLetterQueue"
    ));
    for f in Function::ALL {
        for metric in ["Errors", "Throttles"] {
            assert!(
                has_alarm(&all, "AWS/Lambda", metric, f.logical_id()),
                "{metric} of {f:?}"
            );
        }
    }
    assert!(all
        .iter()
        .any(|(n, m, d, _)| n == "AWS/Events" && m == "FailedInvocations" && d == "RuleName"));
    assert!(all
        .iter()
        .any(|(n, m, _, v)| n == "AWS/ApiGateway" && m == "5xx" && v.as_str() == Some("$default")));
}

#[test]
fn webhooks_are_post_or_put_with_their_own_throttle() {
    let t = template();
    let events = resource(&t, "WebhookFunction")["Properties"]["Events"]
        .as_mapping()
        .unwrap();
    let methods: BTreeSet<String> = events
        .values()
        .map(|e| e["Properties"]["Method"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        methods,
        BTreeSet::from(["POST".to_string(), "PUT".to_string()])
    );
    let routes = &resource(&t, "HttpApi")["Properties"]["RouteSettings"];
    for m in methods {
        let r = &routes[format!("{m} /webhook/{{token}}").as_str()];
        assert!(tagged(&r["ThrottlingRateLimit"]).is_some(), "{m}: {r:?}");
        assert!(tagged(&r["ThrottlingBurstLimit"]).is_some(), "{m}: {r:?}");
    }
}

/// The cost model (docs/PERFORMANCE.md): the webhook function, called for every
/// webhook, writes no platform START/REPORT lines; the functions called rarely keep them.
#[test]
fn the_webhook_function_writes_no_platform_lines() {
    let t = template();
    let level =
        |id: &str| resource(&t, id)["Properties"]["LoggingConfig"]["SystemLogLevel"].clone();
    assert_eq!(level("WebhookFunction"), Value::String("WARN".into()));
    for id in [
        "ApiFunction",
        "PushFunction",
        "ImportFunction",
        "ExportFunction",
    ] {
        assert_eq!(level(id), Value::Null, "{id} keeps its REPORT lines");
    }
}

#[test]
fn the_access_log_records_the_route_never_the_path() {
    let t = template();
    let log = &resource(&t, "HttpApi")["Properties"]["AccessLogSettings"];
    let format = log["Format"].as_str().unwrap();
    assert!(format.contains("$context.routeKey"), "{format}");
    for leak in ["$context.path", "$context.http.path", "$context.requestUri"] {
        assert!(
            !format.contains(leak),
            "{format} logs the path (it holds the token)"
        );
    }
    assert_eq!(
        t["Globals"]["Function"]["Tracing"],
        Value::String("Active".into())
    );
}

#[test]
fn the_api_outlives_its_task_budget() {
    let t = template();
    let timeout = resource(&t, "ApiFunction")["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    let budget = watchstate::app::tasks::API_TASK_BUDGET.as_secs();
    let verify = watchstate::inbound::http::api::VERIFY_LIMIT.as_secs();
    assert!(
        timeout > budget && timeout > verify,
        "api Timeout {timeout} s"
    );
    assert!(timeout <= 30, "API Gateway answers within 30 s");
}

#[test]
fn existing_parameters_and_outputs_are_kept() {
    let t = template();
    for p in [
        "Architecture",
        "AdminKeyParameterName",
        "PublicUrl",
        "ImportScheduleExpression",
        "ExportScheduleExpression",
        "SchedulesState",
        "LogLevel",
        "LogRetentionInDays",
    ] {
        assert!(t["Parameters"].get(p).is_some(), "parameter {p}");
    }
    for o in [
        "BaseUrl",
        "TableName",
        "EventBusName",
        "PushDeadLetterQueueUrl",
    ] {
        assert!(t["Outputs"].get(o).is_some(), "output {o}");
    }
}
