// What the SAM template and the CDK app must agree on, read from a plain CloudFormation
// template (the SAM one expanded by the SAM translator, the CDK one synthesized).
//
// Resources are named by their SAM logical id; on the CDK side by their construct path
// below the Watchstate construct (the construct ids are the SAM logical ids). Values
// are resolved into comparable strings: a SAM parameter becomes its default (the CDK
// props' defaults), a resource reference `<Name>` or `<Name>.Attr`, a pseudo parameter
// `${AWS::Region}`; Fn::Sub and Fn::Join become the string they build.

const PSEUDO = /^AWS::/;

/** The resource's name: SAM logical id, or the CDK construct path under Watchstate. */
function namer(template) {
  const names = {};
  for (const [id, r] of Object.entries(template.Resources ?? {})) {
    const cdkPath = r.Metadata?.["aws:cdk:path"];
    if (!cdkPath) {
      names[id] = id;
      continue;
    }
    const parts = cdkPath.split("/").slice(2); // drop "<Stack>/<Watchstate construct>"
    while (parts.length > 1 && (parts.at(-1) === "Resource" || parts.at(-1) === "Default")) parts.pop();
    names[id] = parts.join("/");
  }
  return names;
}

function resolver(template, names) {
  const params = template.Parameters ?? {};
  const conditions = template.Conditions ?? {};
  // A condition with every parameter at its default (the CDK props' defaults).
  const holds = (c) => {
    if (typeof c === "string") return holds(conditions[c]);
    const [k] = Object.keys(c);
    const a = c[k];
    if (k === "Condition") return holds(conditions[a]);
    if (k === "Fn::Not") return !holds(a[0]);
    if (k === "Fn::And") return a.every(holds);
    if (k === "Fn::Or") return a.some(holds);
    if (k === "Fn::Equals") return JSON.stringify(resolve(a[0])) === JSON.stringify(resolve(a[1]));
    throw new Error(`condition ${k} not understood`);
  };
  const ref = (id) => {
    if (id === "AWS::NoValue") return "${AWS::NoValue}";
    if (PSEUDO.test(id)) return "${" + id + "}";
    if (id in params) return resolve(params[id].Default ?? "");
    if (id in names) return `<${names[id]}>`;
    return `<?${id}>`;
  };
  const getAtt = (v) => {
    const [id, attr] = Array.isArray(v) ? v : String(v).split(/\.(.*)/s);
    return `<${names[id] ?? "?" + id}>.${attr}`;
  };
  function sub(text, vars = {}) {
    return text.replace(/\$\{([^}!]+)\}/g, (_, key) => {
      if (key in vars) return String(resolve(vars[key]));
      if (key.includes(".")) return getAtt(key);
      return String(ref(key));
    });
  }
  function resolve(v) {
    if (Array.isArray(v)) return v.map(resolve).filter((x) => x !== "${AWS::NoValue}");
    if (v === null || typeof v !== "object") return v;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [k] = keys;
      const a = v[k];
      if (k === "Ref") return ref(a);
      if (k === "Fn::GetAtt") return getAtt(a);
      if (k === "Fn::Sub") return Array.isArray(a) ? sub(a[0], a[1]) : sub(a);
      if (k === "Fn::Join") return resolve(a[1]).map(String).join(a[0]);
      if (k === "Fn::If") return resolve(holds(a[0]) ? a[1] : a[2]);
      if (k === "Fn::Split") return `split(${a[0]},${resolve(a[1])})`;
      if (k === "Fn::Select") return `select(${a[0]},${resolve(a[1])})`;
    }
    const out = {};
    for (const k of keys.sort()) {
      const r = resolve(v[k]);
      if (r !== "${AWS::NoValue}") out[k] = r;
    }
    return out;
  }
  return resolve;
}

const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
/** The resources a value refers to: `<Name>` tokens, or the value itself when none. */
const refsOf = (v) => {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  const found = [...s.matchAll(/<([^>]+)>/g)].map((m) => m[1]);
  return found.length ? [...new Set(found)].sort().join(",") : s;
};
const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** Every allowed action of a set of statements, with what it is allowed on. */
function actions(statements, resolve) {
  const out = {};
  for (const st of statements) {
    if (st.Effect !== "Allow") continue;
    const where = list(resolve(st.Resource)).map(refsOf);
    const condition = st.Condition ? JSON.stringify(resolve(st.Condition)) : undefined;
    for (const a of list(st.Action)) {
      const entry = (out[a] ??= new Set());
      for (const w of where) entry.add(condition ? `${w} if ${condition}` : w);
    }
  }
  return sorted(Object.fromEntries(Object.entries(out).map(([a, s]) => [a, [...s].sort()])));
}

/** Statements of a role: inline policies and every AWS::IAM::Policy attached to it. */
function roleStatements(template, roleId) {
  const res = template.Resources;
  const role = res[roleId]?.Properties ?? {};
  const statements = (role.Policies ?? []).flatMap((p) => list(p.PolicyDocument.Statement));
  for (const r of Object.values(res)) {
    if (r.Type !== "AWS::IAM::Policy") continue;
    if (list(r.Properties.Roles).some((x) => x?.Ref === roleId)) {
      statements.push(...list(r.Properties.PolicyDocument.Statement));
    }
  }
  return statements;
}

const managed = (role, resolve) =>
  list(resolve(role?.Properties?.ManagedPolicyArns)).map((arn) => String(arn).split("/").at(-1)).sort();

/** The comparable model of a template. */
export function model(template) {
  const names = namer(template);
  const resolve = resolver(template, names);
  const res = template.Resources ?? {};
  const byType = (type) => Object.entries(res).filter(([, r]) => r.Type === type);
  const nameOfRef = (v) => refsOf(resolve(v));

  const m = {
    counts: {},
    functions: {},
    invokeConfigs: {},
    permissions: [],
    routes: {},
    stages: [],
    apis: [],
    tables: {},
    buses: {},
    queues: {},
    queuePolicies: [],
    rules: {},
    schedules: {},
    logGroups: {},
    alarms: {},
    topics: {},
    keys: {},
    outputs: {},
  };

  const COUNTED = [
    "AWS::Lambda::Function",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
  ];
  for (const t of COUNTED) m.counts[t] = byType(t).length;

  for (const [id, r] of byType("AWS::Lambda::Function")) {
    const p = r.Properties;
    const roleId = p.Role?.["Fn::GetAtt"]?.[0];
    m.functions[names[id]] = {
      runtime: p.Runtime,
      handler: p.Handler,
      architectures: resolve(p.Architectures ?? ["x86_64"]),
      memory: p.MemorySize ?? 128,
      timeout: p.Timeout ?? 3,
      description: p.Description,
      environment: resolve(p.Environment?.Variables ?? {}),
      logging: resolve(p.LoggingConfig ?? {}),
      tracing: p.TracingConfig?.Mode ?? "PassThrough",
      reservedConcurrency: p.ReservedConcurrentExecutions,
      deadLetter: p.DeadLetterConfig ? nameOfRef(p.DeadLetterConfig.TargetArn) : undefined,
      kmsKey: p.KmsKeyArn ? nameOfRef(p.KmsKeyArn) : undefined,
      managedPolicies: managed(res[roleId], resolve),
      actions: actions(roleStatements(template, roleId), resolve),
    };
  }

  for (const [, r] of byType("AWS::Lambda::EventInvokeConfig")) {
    const p = resolve(r.Properties);
    m.invokeConfigs[refsOf(p.FunctionName)] = {
      qualifier: p.Qualifier,
      retries: p.MaximumRetryAttempts,
      maxAge: p.MaximumEventAgeInSeconds,
      onFailure: p.DestinationConfig?.OnFailure ? refsOf(p.DestinationConfig.OnFailure.Destination) : undefined,
      onSuccess: p.DestinationConfig?.OnSuccess ? refsOf(p.DestinationConfig.OnSuccess.Destination) : undefined,
    };
  }

  for (const [, r] of byType("AWS::Lambda::EventSourceMapping")) {
    const p = resolve(r.Properties);
    const { FunctionName, EventSourceArn, ...rest } = p;
    (m.eventSources ??= {})[`${refsOf(EventSourceArn)} -> ${refsOf(FunctionName)}`] = rest;
  }

  for (const [, r] of byType("AWS::Lambda::Permission")) {
    const p = resolve(r.Properties);
    m.permissions.push(`${refsOf(p.FunctionName)} ${p.Action} by ${p.Principal} from ${refsOf(p.SourceArn ?? "")}`);
  }
  m.permissions.sort();

  // Routes: SAM writes them into the API's OpenAPI body, CDK as Route resources.
  for (const [id, r] of byType("AWS::ApiGatewayV2::Api")) {
    const p = r.Properties;
    m.apis.push({ protocol: p.ProtocolType ?? (p.Body ? "HTTP" : undefined), failOnWarnings: p.FailOnWarnings });
    for (const [routePath, methods] of Object.entries(p.Body?.paths ?? {})) {
      for (const [method, op] of Object.entries(methods)) {
        const verb = method === "x-amazon-apigateway-any-method" ? "ANY" : method.toUpperCase();
        const integration = op["x-amazon-apigateway-integration"];
        m.routes[`${verb} ${routePath}`] = {
          target: refsOf(resolve(integration.uri)).split(",").filter((n) => n !== names[id]).join(","),
          payload: integration.payloadFormatVersion,
        };
      }
    }
  }
  for (const [, r] of byType("AWS::ApiGatewayV2::Route")) {
    const integrationId = String(r.Properties.Target?.["Fn::Join"]?.[1]?.[1]?.Ref ?? "");
    const integration = res[integrationId]?.Properties ?? {};
    m.routes[r.Properties.RouteKey] = {
      target: refsOf(resolve(integration.IntegrationUri)),
      payload: integration.PayloadFormatVersion,
    };
  }
  for (const [, r] of byType("AWS::ApiGatewayV2::Stage")) {
    const p = resolve(r.Properties);
    m.stages.push({
      name: p.StageName,
      autoDeploy: p.AutoDeploy,
      defaults: p.DefaultRouteSettings ?? {},
      routes: p.RouteSettings ?? {},
      accessLog: p.AccessLogSettings
        ? { destination: refsOf(p.AccessLogSettings.DestinationArn), format: p.AccessLogSettings.Format }
        : undefined,
    });
  }

  for (const [id, r] of byType("AWS::DynamoDB::Table")) {
    const { Tags, ...p } = resolve(r.Properties);
    m.tables[names[id]] = { ...p, deletion: r.DeletionPolicy ?? "Delete" };
  }
  for (const [id, r] of byType("AWS::Events::EventBus")) m.buses[names[id]] = resolve(r.Properties);
  for (const [id, r] of byType("AWS::SQS::Queue")) {
    const { Tags, ...p } = resolve(r.Properties ?? {});
    m.queues[names[id]] = { ...p, deletion: r.DeletionPolicy ?? "Delete" };
  }
  for (const [, r] of byType("AWS::SQS::QueuePolicy")) {
    const p = resolve(r.Properties);
    for (const st of list(p.PolicyDocument.Statement)) {
      m.queuePolicies.push(
        JSON.stringify({
          queues: list(p.Queues).map(refsOf),
          effect: st.Effect,
          principal: st.Principal,
          actions: list(st.Action).sort(),
          resource: list(st.Resource).map(refsOf),
          condition: st.Condition,
        }),
      );
    }
  }
  m.queuePolicies.sort();

  for (const [id, r] of byType("AWS::Events::Rule")) {
    const p = resolve(r.Properties);
    m.rules[names[id]] = {
      bus: refsOf(p.EventBusName ?? "default"),
      pattern: p.EventPattern,
      schedule: p.ScheduleExpression,
      state: p.State ?? "ENABLED",
      targets: list(p.Targets)
        .map((t) =>
          JSON.stringify({
            target: refsOf(t.Arn),
            retry: t.RetryPolicy,
            deadLetter: t.DeadLetterConfig ? refsOf(t.DeadLetterConfig.Arn) : undefined,
            input: t.Input,
          }),
        )
        .sort(),
    };
  }

  for (const [id, r] of byType("AWS::Scheduler::Schedule")) {
    const p = resolve(r.Properties);
    const roleId = r.Properties.Target?.RoleArn?.["Fn::GetAtt"]?.[0];
    m.schedules[names[id]] = {
      name: p.Name,
      expression: p.ScheduleExpression,
      timezone: p.ScheduleExpressionTimezone,
      state: p.State,
      window: p.FlexibleTimeWindow,
      target: refsOf(p.Target.Arn),
      retry: p.Target.RetryPolicy,
      input: p.Target.Input,
      deadLetter: p.Target.DeadLetterConfig ? refsOf(p.Target.DeadLetterConfig.Arn) : undefined,
      roleActions: actions(roleStatements(template, roleId), resolve),
    };
  }

  for (const [id, r] of byType("AWS::Logs::LogGroup")) {
    const p = resolve(r.Properties);
    m.logGroups[names[id]] = {
      name: p.LogGroupName,
      retention: p.RetentionInDays,
      kmsKey: p.KmsKeyId ? refsOf(p.KmsKeyId) : undefined,
      deletion: r.DeletionPolicy ?? "Delete",
    };
  }

  for (const [id, r] of byType("AWS::CloudWatch::Alarm")) {
    const { AlarmActions, OKActions, InsufficientDataActions, Dimensions, Metrics, ...p } = resolve(r.Properties);
    m.alarms[names[id]] = {
      ...p,
      dimensions: list(Dimensions).map((d) => `${d.Name}=${refsOf(d.Value)}`).sort(),
      metrics: Metrics,
      alarmActions: list(AlarmActions).map(refsOf).sort(),
      okActions: list(OKActions).map(refsOf).sort(),
    };
  }
  for (const [id, r] of byType("AWS::SNS::Topic")) {
    const { Tags, ...p } = resolve(r.Properties ?? {});
    m.topics[names[id]] = p;
  }
  for (const [id, r] of byType("AWS::KMS::Key")) {
    const p = resolve(r.Properties ?? {});
    m.keys[names[id]] = {
      rotation: p.EnableKeyRotation ?? false,
      spec: p.KeySpec,
      usage: p.KeyUsage,
      deletion: r.DeletionPolicy ?? "Delete",
      grants: actions(list(p.KeyPolicy?.Statement), resolve),
    };
  }

  for (const [name, o] of Object.entries(template.Outputs ?? {})) {
    m.outputs[name] = { description: o.Description, value: resolve(o.Value) };
  }
  return m;
}
