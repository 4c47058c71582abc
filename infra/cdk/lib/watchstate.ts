/**
 * The Watchstate construct: the whole watchstate deployment (HTTP API, the five Rust
 * functions, one DynamoDB table, the EventBridge bus feeding push, the schedules, the
 * dead-letter queue) as one CDK construct, with the same resources, settings and
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
  RemovalPolicy,
  Stack,
  aws_apigatewayv2 as apigw,
  aws_apigatewayv2_integrations as integrations,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_scheduler as scheduler,
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
  /** How long the functions' logs are kept. Default 30 days. */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Prefix of the named resources (bus, log groups, schedules). Default: the stack
   * name, as in the SAM template; set it when one stack holds two deployments.
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
  publicUrl: "",
  importSchedule: "cron(0 * * * ? *)",
  exportSchedule: "cron(30 * * * ? *)",
  logLevel: "info",
  logRetention: logs.RetentionDays.ONE_MONTH,
};

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
const PLACEHOLDER = path.resolve(__dirname, "..", "..", "placeholder");

/** DynamoDBCrudPolicy of SAM: what the store needs on the table. */
const TABLE_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:DeleteItem",
  "dynamodb:PutItem",
  "dynamodb:Scan",
  "dynamodb:Query",
  "dynamodb:UpdateItem",
  "dynamodb:BatchWriteItem",
  "dynamodb:BatchGetItem",
  "dynamodb:DescribeTable",
  "dynamodb:ConditionCheckItem",
];

/** SQSPollerPolicy of SAM: what the export's dead-letter sweep needs. */
const QUEUE_POLL_ACTIONS = [
  "sqs:ChangeMessageVisibility",
  "sqs:ChangeMessageVisibilityBatch",
  "sqs:DeleteMessage",
  "sqs:DeleteMessageBatch",
  "sqs:GetQueueAttributes",
  "sqs:ReceiveMessage",
];

export class Watchstate extends Construct {
  public readonly table: dynamodb.Table;
  public readonly bus: events.EventBus;
  public readonly httpApi: apigw.HttpApi;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly functions: Record<FunctionBinary, lambda.Function>;
  /** `https://{api}.execute-api.{region}.{suffix}`: webhooks at `/webhook/{token}`, the api at `/v1/`. */
  public readonly baseUrl: string;

  constructor(scope: Construct, id: string, props: WatchstateProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const name = props.name ?? Aws.STACK_NAME;
    const adminKey = props.adminKeyParameterName ?? DEFAULTS.adminKeyParameterName;
    const retention = props.logRetention ?? DEFAULTS.logRetention;
    const code = props.code ?? ((binary: FunctionBinary) => this.builtCode(binary, props));

    // --- Store ---------------------------------------------------------------------
    this.table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      sortKey: { name: "sk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: "expires_at",
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // --- Fan-out: bus -> push, with retries and a dead-letter queue -----------------
    this.bus = new events.EventBus(this, "Bus", { eventBusName: `${name}-bus` });
    // State changes that could not be pushed; the export sweeps it.
    this.deadLetterQueue = new sqs.Queue(this, "PushDeadLetterQueue", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // --- Functions -----------------------------------------------------------------
    const tableArns = [this.table.tableArn, `${this.table.tableArn}/index/*`];
    const fn = (
      id: string,
      binary: FunctionBinary,
      settings: { description: string; memory?: number; timeout?: number; environment?: Record<string, string> },
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
        logGroup,
        environment: {
          TABLE_NAME: this.table.tableName,
          EVENT_BUS_NAME: this.bus.eventBusName,
          RUST_LOG: props.logLevel ?? DEFAULTS.logLevel,
          ...settings.environment,
        },
      });
      f.addToRolePolicy(new iam.PolicyStatement({ actions: TABLE_ACTIONS, resources: tableArns }));
      f.addToRolePolicy(
        new iam.PolicyStatement({ actions: ["events:PutEvents"], resources: [this.bus.eventBusArn] }),
      );
      return f;
    };

    const webhook = fn("WebhookFunction", "webhook", {
      description: "POST|PUT /webhook/{token} from Plex, Tautulli, Jellyfin and Emby",
    });
    const api = fn("ApiFunction", "api", {
      description: "/v1/* management api (users, backends, items, deliveries, tasks)",
      environment: {
        WATCHSTATE_ADMIN_KEY_PARAMETER: adminKey,
        WATCHSTATE_PUBLIC_URL: props.publicUrl ?? DEFAULTS.publicUrl,
      },
    });
    const parameterArn = stack.formatArn({
      service: "ssm",
      resource: "parameter",
      resourceName: adminKey.replace(/^\//, ""),
    });
    api.addToRolePolicy(
      new iam.PolicyStatement({ sid: "ReadAdminKey", actions: ["ssm:GetParameter"], resources: [parameterArn] }),
    );
    // The aws/ssm key's id is not known here: Decrypt on any key of the account, but
    // only through SSM and only for this one parameter.
    api.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DecryptAdminKey",
        actions: ["kms:Decrypt"],
        resources: [stack.formatArn({ service: "kms", resource: "key", resourceName: "*" })],
        conditions: {
          StringEquals: {
            "kms:ViaService": `ssm.${stack.region}.amazonaws.com`,
            "kms:EncryptionContext:PARAMETER_ARN": parameterArn,
          },
        },
      }),
    );

    const push = fn("PushFunction", "push", {
      description: "Pushes one StateChange from the bus to the user's other backends",
      timeout: 60,
    });
    // EventBridge invokes asynchronously: function errors are retried by Lambda, and
    // what still fails is parked in the dead-letter queue.
    push.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["sqs:SendMessage"], resources: [this.deadLetterQueue.queueArn] }),
    );
    this.invokeConfig("PushFunctionEventInvokeConfig", push, {
      maximumRetryAttempts: 2,
      maximumEventAgeInSeconds: 21600,
      destinationConfig: { onFailure: { destination: this.deadLetterQueue.queueArn } },
    });

    const importFn = fn("ImportFunction", "import", {
      description: "Scheduled import (paged, resumable) of every backend's played state",
      memory: 512,
      timeout: 900,
    });
    // A failed run is not retried: the next scheduled run resumes where it stopped.
    this.invokeConfig("ImportFunctionEventInvokeConfig", importFn, { maximumRetryAttempts: 0 });

    const exportFn = fn("ExportFunction", "export", {
      description: "Scheduled export to every backend; also sweeps the push dead-letter queue",
      memory: 512,
      timeout: 900,
      environment: { DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl },
    });
    exportFn.addToRolePolicy(
      new iam.PolicyStatement({ actions: QUEUE_POLL_ACTIONS, resources: [this.deadLetterQueue.queueArn] }),
    );
    this.invokeConfig("ExportFunctionEventInvokeConfig", exportFn, { maximumRetryAttempts: 0 });

    this.functions = { webhook, api, push, import: importFn, export: exportFn };

    // --- HTTP API ------------------------------------------------------------------
    this.httpApi = new apigw.HttpApi(this, "HttpApi", { apiName: name, createDefaultStage: false });
    (this.httpApi.node.defaultChild as apigw.CfnApi).failOnWarnings = true;
    this.httpApi.addStage("HttpApiApiGatewayDefaultStage", {
      stageName: "$default",
      autoDeploy: true,
      throttle: { burstLimit: 100, rateLimit: 50 },
    });
    this.httpApi.addRoutes({
      path: "/webhook/{token}",
      methods: [apigw.HttpMethod.ANY],
      integration: new integrations.HttpLambdaIntegration("Webhook", webhook),
    });
    this.httpApi.addRoutes({
      path: "/v1/{proxy+}",
      methods: [apigw.HttpMethod.ANY],
      integration: new integrations.HttpLambdaIntegration("Api", api),
    });
    this.baseUrl = `https://${this.httpApi.apiId}.execute-api.${stack.region}.${stack.urlSuffix}`;

    // --- Rules and schedules ---------------------------------------------------------
    new events.Rule(this, "StateChangeRule", {
      description: "Every state change goes to the push function",
      eventBus: this.bus,
      eventPattern: { source: ["watchstate"], detailType: ["StateChange"] },
      targets: [
        new targets.LambdaFunction(push, {
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
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
  new CfnOutput(scope, "TableName", { description: "The DynamoDB table", value: w.table.tableName });
  new CfnOutput(scope, "EventBusName", {
    description: "The EventBridge bus state changes are published on",
    value: w.bus.eventBusName,
  });
  new CfnOutput(scope, "PushDeadLetterQueueUrl", {
    description: "State changes that could not be pushed (swept by export)",
    value: w.deadLetterQueue.queueUrl,
  });
}
