/**
 * The Watchstate construct: the whole watchstate deployment (HTTP API, the five Rust
 * functions, one DynamoDB table, the EventBridge bus and push queue feeding push, the
 * schedules, the dead-letter queue, the KMS key sealing tokens, the alarms) as one CDK
 * construct, with the same resources, settings and
 * permissions as the SAM template `infra/template.yaml`. SAM parameters are props
 * here; `test/compare.test.mjs` fails when the two drift apart.
 *
 * Function code comes from `cargo lambda build` output, `target/lambda/{binary}/`.
 * When that is missing (a synth without a Rust build) a placeholder is used and a
 * warning is logged; set `requireBuild` (as `make cdk-deploy` does) to refuse that.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import {
  Annotations,
  Aws,
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  aws_apigatewayv2 as apigw,
  aws_apigatewayv2_integrations as integrations,
  aws_cloudwatch as cloudwatch,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_scheduler as scheduler,
  aws_sns as sns,
  aws_sqs as sqs,
} from "aws-cdk-lib";
import { Construct } from "constructs";

/** The function binaries of the Cargo workspace (`functions/*`). */
export type FunctionBinary = "webhook" | "api" | "push" | "import" | "export";

export interface WatchstateProps {
  /** Lambda architecture of every function. Default arm64 (Graviton). */
  readonly architecture?: lambda.Architecture;
  /** Existing SSM SecureString holding the api's admin key. Default `/watchstate/admin-key`. */
  readonly adminKeyParameterName?: string;
  /** Existing SSM SecureString webhook tokens derive from. Default `/watchstate/token-secret`. */
  readonly tokenSecretParameterName?: string;
  /** Where the alarms are mailed (SNS email subscription). Default: none. */
  readonly alarmEmail?: string;
  /** State changes per push invocation. Default 100. */
  readonly pushBatchSize?: number;
  /** How long the push queue gathers a batch, seconds. Default 5. */
  readonly pushBatchWindowSeconds?: number;
  /** Push invocations at once (so calls at once per media server). Default 2. */
  readonly pushMaxConcurrency?: number;
  /** Webhook requests per second the webhook route accepts. Default 20. */
  readonly webhookThrottleRate?: number;
  /** Webhook requests the webhook route accepts in a burst. Default 40. */
  readonly webhookThrottleBurst?: number;
  /** Base URL fronting the HTTP API when a custom domain is used. Default: none. */
  readonly publicUrl?: string;
  /** When the import runs. Default hourly on the hour (UTC). */
  readonly importSchedule?: string;
  /** When the export runs. Default hourly at half past (UTC). */
  readonly exportSchedule?: string;
  /** Both schedules on or off. Default on. */
  readonly schedulesEnabled?: boolean;
  /** RUST_LOG of every function. Default `info`. */
  readonly logLevel?: string;
  /** How long the functions' and the API's logs are kept. Default 30 days. */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Prefix of the named resources (bus, log groups, schedules, key alias). Default: the
   * stack name, as in the SAM template; set it when one stack holds two deployments.
   */
  readonly name?: string;
  /** Where `cargo lambda build` put the binaries. Default `<repo>/target/lambda`. */
  readonly buildDir?: string;
  /** Fail instead of using placeholder code when a binary is not built. */
  readonly requireBuild?: boolean;
  /** Code of each function, overriding `buildDir` (e.g. cargo-lambda-cdk bundling). */
  readonly code?: (binary: FunctionBinary) => lambda.Code;
}

/** The SAM template's parameter defaults. */
export const DEFAULTS = {
  adminKeyParameterName: "/watchstate/admin-key",
  tokenSecretParameterName: "/watchstate/token-secret",
  alarmEmail: "",
  pushBatchSize: 100,
  pushBatchWindowSeconds: 5,
  pushMaxConcurrency: 2,
  webhookThrottleRate: 20,
  webhookThrottleBurst: 40,
  publicUrl: "",
  importSchedule: "cron(0 * * * ? *)",
  exportSchedule: "cron(30 * * * ? *)",
  logLevel: "info",
  logRetention: logs.RetentionDays.ONE_MONTH,
};

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
const PLACEHOLDER = path.resolve(__dirname, "..", "..", "placeholder");

/** What each function may do on the table: exactly the calls its code makes. */
const TABLE_ACTIONS: Record<FunctionBinary, string[]> = {
  webhook: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
  api: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
  push: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
  import: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
  export: ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
};

const ACCESS_LOG_FORMAT =
  '{"requestId":"$context.requestId","requestTime":"$context.requestTimeEpoch","routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength","integrationLatency":"$context.integrationLatency","integrationError":"$context.integrationErrorMessage"}';

export class Watchstate extends Construct {
  public readonly table: dynamodb.Table;
  public readonly bus: events.EventBus;
  public readonly httpApi: apigw.HttpApi;
  public readonly pushQueue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly tokenKey: kms.Key;
  public readonly alarmTopic: sns.CfnTopic;
  public readonly functions: Record<FunctionBinary, lambda.Function>;
  /** `https://{api}.execute-api.{region}.{suffix}`: webhooks at `/webhook/{token}`, the api at `/v1/`. */
  public readonly baseUrl: string;

  constructor(scope: Construct, id: string, props: WatchstateProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const name = props.name ?? Aws.STACK_NAME;
    const adminKey = props.adminKeyParameterName ?? DEFAULTS.adminKeyParameterName;
    const tokenSecret = props.tokenSecretParameterName ?? DEFAULTS.tokenSecretParameterName;
    const retention = props.logRetention ?? DEFAULTS.logRetention;
    const code = props.code ?? ((binary: FunctionBinary) => this.builtCode(binary, props));

    // --- Store and the key sealing media server tokens -------------------------------
    this.table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      sortKey: { name: "sk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: "expires_at",
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.tokenKey = new kms.Key(this, "TokenKey", {
      description: "watchstate media server tokens at rest",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    new kms.Alias(this, "TokenKeyAlias", { aliasName: `alias/${name}-tokens`, targetKey: this.tokenKey });

    // --- Fan-out: bus -> push queue -> push, with a dead-letter queue ----------------
    this.bus = new events.EventBus(this, "Bus", { eventBusName: `${name}-bus` });
    this.deadLetterQueue = new sqs.Queue(this, "PushDeadLetterQueue", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.pushQueue = new sqs.Queue(this, "PushQueue", {
      visibilityTimeout: Duration.seconds(360),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 4 },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // --- Functions -----------------------------------------------------------------
    const fn = (
      id: string,
      binary: FunctionBinary,
      settings: {
        description: string;
        memory?: number;
        timeout?: number;
        environment?: Record<string, string>;
        systemLogLevel?: lambda.SystemLogLevel;
      },
    ) => {
      const logGroup = new logs.LogGroup(this, `${id.replace(/Function$/, "")}LogGroup`, {
        logGroupName: `/aws/lambda/${name}-${binary}`,
        retention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const f = new lambda.Function(this, id, {
        runtime: lambda.Runtime.PROVIDED_AL2023,
        handler: "bootstrap",
        code: code(binary),
        architecture: props.architecture ?? lambda.Architecture.ARM_64,
        memorySize: settings.memory ?? 256,
        timeout: Duration.seconds(settings.timeout ?? 10),
        description: settings.description,
        loggingFormat: lambda.LoggingFormat.JSON,
        systemLogLevelV2: settings.systemLogLevel,
        logGroup,
        environment: {
          TABLE_NAME: this.table.tableName,
          EVENT_BUS_NAME: this.bus.eventBusName,
          RUST_LOG: props.logLevel ?? DEFAULTS.logLevel,
          // Backend urls must be https and public unless a backend allows otherwise.
          WATCHSTATE_DEPLOYMENT: "aws",
          ...settings.environment,
        },
      });
      // X-Ray as SAM's `Tracing: Active` has it: the mode and the managed write policy.
      (f.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: "Active" };
      f.role?.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName("AWSXrayWriteOnlyAccess"));
      f.addToRolePolicy(new iam.PolicyStatement({ sid: "Table", actions: TABLE_ACTIONS[binary], resources: [this.table.tableArn] }));
      f.addToRolePolicy(new iam.PolicyStatement({ sid: "Bus", actions: ["events:PutEvents"], resources: [this.bus.eventBusArn] }));
      return f;
    };
    const decryptTokens = (f: lambda.Function, actions = ["kms:Decrypt"]) =>
      f.addToRolePolicy(new iam.PolicyStatement({ sid: "TokenKey", actions, resources: [this.tokenKey.keyArn] }));
    const tokenKeyEnv = { WATCHSTATE_TOKEN_KEY_ID: this.tokenKey.keyId };

    const webhook = fn("WebhookFunction", "webhook", {
      description: "POST|PUT /webhook/{token} from Plex, Tautulli, Jellyfin and Emby",
      // No platform START/REPORT lines per webhook (as the SAM template).
      systemLogLevel: lambda.SystemLogLevel.WARN,
    });

    const api = fn("ApiFunction", "api", {
      description: "/v1/* management api (users, backends, items, deliveries, tasks) and the console at /",
      timeout: 30,
      environment: {
        WATCHSTATE_ADMIN_KEY_PARAMETER: adminKey,
        WATCHSTATE_TOKEN_SECRET_PARAMETER: tokenSecret,
        WATCHSTATE_PUBLIC_URL: props.publicUrl ?? DEFAULTS.publicUrl,
        ...tokenKeyEnv,
        // POST /v1/tasks/export sweeps it first, as the export's schedule does.
        DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
      },
    });
    decryptTokens(api, ["kms:Decrypt", "kms:Encrypt"]);
    const parameterArn = (p: string) =>
      `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${p}`;
    const secretArns = [parameterArn(adminKey), parameterArn(tokenSecret)];
    api.addToRolePolicy(new iam.PolicyStatement({ sid: "Secrets", actions: ["ssm:GetParameter"], resources: secretArns }));
    // The aws/ssm key's id is not known here: Decrypt on any key of the account, but
    // only through SSM and only for these parameters.
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DecryptSecrets",
        actions: ["kms:Decrypt"],
        resources: [stack.formatArn({ service: "kms", resource: "key", resourceName: "*" })],
        conditions: {
          StringEquals: {
            "kms:ViaService": `ssm.${Aws.REGION}.amazonaws.com`,
            "kms:EncryptionContext:PARAMETER_ARN": secretArns,
          },
        },
      }),
    );

    // The export and `POST /v1/tasks/export` sweep the push dead-letter queue.
    const sweepsDeadLetters = (f: lambda.Function) =>
      f.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "DeadLetters",
          actions: ["sqs:DeleteMessage", "sqs:ReceiveMessage"],
          resources: [this.deadLetterQueue.queueArn],
        }),
      );
    sweepsDeadLetters(api);

    const push = fn("PushFunction", "push", {
      description: "Pushes batches of StateChanges from the push queue to the users' other backends",
      timeout: 60,
      environment: tokenKeyEnv,
    });
    decryptTokens(push);
    push.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "PushQueue",
        actions: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
        resources: [this.pushQueue.queueArn],
      }),
    );
    new lambda.CfnEventSourceMapping(this, "PushQueueToPush", {
      eventSourceArn: this.pushQueue.queueArn,
      functionName: push.functionName,
      batchSize: props.pushBatchSize ?? DEFAULTS.pushBatchSize,
      maximumBatchingWindowInSeconds: props.pushBatchWindowSeconds ?? DEFAULTS.pushBatchWindowSeconds,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: props.pushMaxConcurrency ?? DEFAULTS.pushMaxConcurrency },
    }).node.addDependency(push);

    const importFn = fn("ImportFunction", "import", {
      description: "Scheduled import (paged, resumable) of every backend's played state",
      memory: 512,
      timeout: 900,
      environment: tokenKeyEnv,
    });
    decryptTokens(importFn);
    // A failed run is not retried: the next scheduled run resumes where it stopped.
    this.invokeConfig("ImportFunctionEventInvokeConfig", importFn, { maximumRetryAttempts: 0 });

    const exportFn = fn("ExportFunction", "export", {
      description: "Scheduled export to every backend; also sweeps the push dead-letter queue",
      memory: 512,
      timeout: 900,
      environment: { DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl, ...tokenKeyEnv },
    });
    decryptTokens(exportFn);
    sweepsDeadLetters(exportFn);
    this.invokeConfig("ExportFunctionEventInvokeConfig", exportFn, { maximumRetryAttempts: 0 });

    this.functions = { webhook, api, push, import: importFn, export: exportFn };

    // --- HTTP API ------------------------------------------------------------------
    this.httpApi = new apigw.HttpApi(this, "HttpApi", { apiName: name, createDefaultStage: false });
    (this.httpApi.node.defaultChild as apigw.CfnApi).failOnWarnings = true;
    const accessLog = new logs.LogGroup(this, "ApiAccessLogGroup", {
      logGroupName: `/aws/apigateway/${name}-access`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // RouteSettings is a plain JSON map in CloudFormation: its keys as CloudFormation spells them.
    const webhookThrottle = {
      ThrottlingBurstLimit: props.webhookThrottleBurst ?? DEFAULTS.webhookThrottleBurst,
      ThrottlingRateLimit: props.webhookThrottleRate ?? DEFAULTS.webhookThrottleRate,
    };
    new apigw.CfnStage(this, "HttpApiApiGatewayDefaultStage", {
      apiId: this.httpApi.apiId,
      stageName: "$default",
      autoDeploy: true,
      defaultRouteSettings: { throttlingBurstLimit: 100, throttlingRateLimit: 50 },
      routeSettings: { "POST /webhook/{token}": webhookThrottle, "PUT /webhook/{token}": webhookThrottle },
      accessLogSettings: { destinationArn: accessLog.logGroupArn, format: ACCESS_LOG_FORMAT },
    });
    for (const method of [apigw.HttpMethod.POST, apigw.HttpMethod.PUT]) {
      this.httpApi.addRoutes({
        path: "/webhook/{token}",
        methods: [method],
        integration: new integrations.HttpLambdaIntegration(`Webhook${method}`, webhook),
      });
    }
    this.httpApi.addRoutes({
      path: "/v1/{proxy+}",
      methods: [apigw.HttpMethod.ANY],
      integration: new integrations.HttpLambdaIntegration("Api", api),
    });
    // The console: the page at the root, its assets under /console/.
    this.httpApi.addRoutes({
      path: "/",
      methods: [apigw.HttpMethod.GET],
      integration: new integrations.HttpLambdaIntegration("Console", api),
    });
    this.httpApi.addRoutes({
      path: "/console/{proxy+}",
      methods: [apigw.HttpMethod.GET],
      integration: new integrations.HttpLambdaIntegration("ConsoleAssets", api),
    });
    this.baseUrl = `https://${this.httpApi.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;

    // --- Rules and schedules ---------------------------------------------------------
    const stateChanges = new events.Rule(this, "StateChangeRule", {
      description: "Every state change goes to the push queue",
      eventBus: this.bus,
      eventPattern: { source: ["watchstate"], detailType: ["StateChange"] },
    });
    // The target as the template has it; the queue policies allow exactly SendMessage
    // from this rule (targets.SqsQueue would also grant GetQueueAttributes/GetQueueUrl).
    stateChanges.addTarget({
      bind: () => ({
        arn: this.pushQueue.queueArn,
        retryPolicy: { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86400 },
        deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
      }),
    });
    for (const queue of [this.pushQueue, this.deadLetterQueue]) {
      queue.addToResourcePolicy(
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal("events.amazonaws.com")],
          actions: ["sqs:SendMessage"],
          resources: [queue.queueArn],
          conditions: { ArnEquals: { "aws:SourceArn": stateChanges.ruleArn } },
        }),
      );
    }
    // An import that runs out of its budget publishes the rest as an ImportPage event;
    // this rule hands it to the next invocation.
    new events.Rule(this, "ImportFunctionContinue", {
      eventBus: this.bus,
      eventPattern: { source: ["watchstate"], detailType: ["ImportPage"] },
      targets: [new targets.LambdaFunction(importFn, { retryAttempts: 3, maxEventAge: Duration.hours(1) })],
    });
    const enabled = props.schedulesEnabled ?? true;
    this.schedule("ImportFunctionSchedule", `${name}-import`, importFn, props.importSchedule ?? DEFAULTS.importSchedule, enabled);
    this.schedule("ExportFunctionSchedule", `${name}-export`, exportFn, props.exportSchedule ?? DEFAULTS.exportSchedule, enabled);

    // --- Alarms ----------------------------------------------------------------------
    const email = props.alarmEmail ?? DEFAULTS.alarmEmail;
    this.alarmTopic = new sns.CfnTopic(this, "AlarmTopic", {
      displayName: "watchstate alarms",
      subscription: email ? [{ protocol: "email", endpoint: email }] : undefined,
    });
    const alarm = (
      alarmId: string,
      description: string,
      namespace: string,
      metricName: string,
      dimensions: Record<string, string>,
      statistic: string,
      threshold: number,
    ) =>
      new cloudwatch.CfnAlarm(this, alarmId, {
        alarmDescription: description,
        namespace,
        metricName,
        dimensions: Object.entries(dimensions).map(([n, value]) => ({ name: n, value })),
        statistic,
        period: 300,
        evaluationPeriods: 1,
        threshold,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        alarmActions: [this.alarmTopic.ref],
        okActions: [this.alarmTopic.ref],
      });
    const dlq = { QueueName: this.deadLetterQueue.queueName };
    alarm("DeadLetterDepthAlarm", "State changes are parked in the push dead-letter queue (export sweeps it hourly)", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq, "Maximum", 0);
    alarm("DeadLetterAgeAlarm", "A parked state change is over 3 days old (the dead-letter queue keeps 14 days)", "AWS/SQS", "ApproximateAgeOfOldestMessage", dlq, "Maximum", 259200);
    alarm("PushQueueAgeAlarm", "State changes wait over 15 minutes in the push queue", "AWS/SQS", "ApproximateAgeOfOldestMessage", { QueueName: this.pushQueue.queueName }, "Maximum", 900);
    const ruleName = Fn.select(1, Fn.split("|", (stateChanges.node.defaultChild as events.CfnRule).ref));
    alarm("StateChangeRuleFailedAlarm", "EventBridge could not deliver state changes to the push queue", "AWS/Events", "FailedInvocations", { EventBusName: this.bus.eventBusName, RuleName: ruleName }, "Sum", 0);
    alarm("HttpApi5xxAlarm", "The HTTP API answered 5xx (the webhook answers 503 only when the store is down)", "AWS/ApiGateway", "5xx", { ApiId: this.httpApi.apiId, Stage: "$default" }, "Sum", 0);
    const fnAlarms: [string, string, lambda.Function][] = [
      ["Webhook", "webhook", webhook],
      ["Api", "api", api],
      ["Push", "push", push],
      ["Import", "import", importFn],
      ["Export", "export", exportFn],
    ];
    for (const [prefix, label, f] of fnAlarms) {
      const dims = { FunctionName: f.functionName };
      alarm(`${prefix}ErrorsAlarm`, `The ${label} function failed (errors, timeouts)`, "AWS/Lambda", "Errors", dims, "Sum", 0);
      alarm(`${prefix}ThrottlesAlarm`, `The ${label} function was throttled`, "AWS/Lambda", "Throttles", dims, "Sum", 0);
    }
  }

  /** The function's `cargo lambda build` output, or the placeholder (with a warning). */
  private builtCode(binary: FunctionBinary, props: WatchstateProps): lambda.Code {
    const dir = path.join(props.buildDir ?? path.join(REPO_ROOT, "target", "lambda"), binary);
    if (fs.existsSync(path.join(dir, "bootstrap"))) {
      return lambda.Code.fromAsset(dir);
    }
    const message = `${binary}: no build in ${dir}; using placeholder code (run \`make cdk-deploy\`, which builds first)`;
    if (props.requireBuild) {
      throw new Error(message);
    }
    Annotations.of(this).addWarningV2(`watchstate:placeholder:${binary}`, message);
    return lambda.Code.fromAsset(PLACEHOLDER);
  }

  private invokeConfig(
    id: string,
    f: lambda.Function,
    settings: Omit<lambda.CfnEventInvokeConfigProps, "functionName" | "qualifier">,
  ) {
    new lambda.CfnEventInvokeConfig(this, id, { functionName: f.functionName, qualifier: "$LATEST", ...settings });
  }

  private schedule(id: string, scheduleName: string, target: lambda.Function, expression: string, enabled: boolean) {
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com"),
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [target.functionArn] }));
    new scheduler.CfnSchedule(this, id, {
      name: scheduleName,
      scheduleExpression: expression,
      scheduleExpressionTimezone: "UTC",
      state: enabled ? "ENABLED" : "DISABLED",
      flexibleTimeWindow: { mode: "OFF" },
      target: {
        arn: target.functionArn,
        roleArn: role.roleArn,
        retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 1800 },
      },
    });
  }
}

/** The outputs of the SAM template, for a stack holding one Watchstate. */
export function addOutputs(scope: Construct, w: Watchstate) {
  new CfnOutput(scope, "BaseUrl", {
    description: "Base URL of the HTTP API (webhooks at {BaseUrl}/webhook/{token}, api at {BaseUrl}/v1/)",
    value: w.baseUrl,
  });
  new CfnOutput(scope, "ConsoleUrl", {
    description: "The console (sign in with the admin key)",
    value: `${w.baseUrl}/`,
  });
  new CfnOutput(scope, "TableName", { description: "The DynamoDB table", value: w.table.tableName });
  new CfnOutput(scope, "EventBusName", {
    description: "The EventBridge bus state changes are published on",
    value: w.bus.eventBusName,
  });
  new CfnOutput(scope, "PushDeadLetterQueueUrl", {
    description: "State changes that could not be pushed (swept by export)",
    value: w.deadLetterQueue.queueUrl,
  });
  new CfnOutput(scope, "PushQueueUrl", {
    description: "State changes on their way to the push function",
    value: w.pushQueue.queueUrl,
  });
  new CfnOutput(scope, "AlarmTopicArn", {
    description: "SNS topic of every alarm (subscribe to it, or set AlarmEmail)",
    value: w.alarmTopic.ref,
  });
  new CfnOutput(scope, "TokenKeyArn", {
    description: "KMS key sealing media server tokens at rest",
    value: w.tokenKey.keyArn,
  });
}
