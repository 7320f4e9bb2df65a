import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { type PulumiProgram, preparePulumiProgram } from "./pulumi-program";

/**
 * Drives the real dynamic-provider plugin of @pulumi/pulumi over gRPC, as the Pulumi engine does (the CLI
 * cannot be installed here): the plugin process runs in a program folder with the packed package installed
 * (see pulumi-program.ts), and each method sends the request the engine would send.
 *
 * Protobuf classes come from the program folder's own @pulumi/pulumi, so requests, Structs and the plugin's
 * serializers share one google-protobuf instance (the serializers check with instanceof).
 */

/** Pulumi's marker of a secret value in a Struct; the plugin unwraps these in Configure. */
const SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270";

/** Wraps a config value the way the engine sends a secret. */
export function secret(value: unknown): Record<string, unknown> {
  return { [SECRET_SIGNATURE_KEY]: SECRET_SIGNATURE, value };
}

/** Hook timeout for starting a plugin: the first start of a run builds, packs and installs the package. */
export const PREPARE_TIMEOUT_MS = 10 * 60_000;

export const SNAPSHOT_TYPE = "pulumi-nodejs:dynamic/libvirt:Snapshot";

/** What the plugin records when create/update failed after the resource existed (ErrorResourceInitFailed). */
export interface InitFailure {
  readonly id: string;
  readonly properties: Record<string, unknown>;
  readonly reasons: string[];
}

/** A failed gRPC call, with the partial state trailer decoded when the plugin sent one. */
export class PluginCallError extends Error {
  override readonly name = "PluginCallError";
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
    readonly initFailure: InitFailure | null,
  ) {
    super(`${method}: ${details} (gRPC code ${code})`);
  }
}

export type DiffChanges = "unknown" | "none" | "some";

export interface PluginOptions {
  /** Extra environment of the plugin process (e.g. LIBVIRT_DEFAULT_URI); the test's own is inherited. */
  readonly env?: Record<string, string>;
  /** Deadline of each call, ms (default 180 s). */
  readonly callTimeoutMs?: number;
}

type Props = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: generated protobuf and gRPC modules loaded at run time
type Any = any;

/** How long a starting plugin may take to print its port, ms. */
const PORT_TIMEOUT_MS = 120_000;

/** Lines a process printed, in the order they were read, with waiters for lines still to come. */
class OutputLines {
  readonly lines: string[] = [];
  private waiters: { matches: (line: string) => boolean; found: (line: string) => void }[] = [];

  readonly add = (line: string): void => {
    this.lines.push(line);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.matches(line)) return true;
      waiter.found(line);
      return false;
    });
  };

  waitFor(matches: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const seen = this.lines.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.found !== found);
        reject(
          new Error(
            `no matching plugin output within ${timeoutMs} ms; it printed:\n${this.lines.join("\n")}`,
          ),
        );
      }, timeoutMs);
      const found = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ matches, found });
    });
  }
}

/** One running plugin process and a gRPC client for it. Always `stop()` it (in afterAll). */
export class PulumiPlugin {
  private readonly proto: Any;
  private readonly struct: Any;
  private readonly statusProto: Any;
  private readonly client: Any;

  private constructor(
    readonly program: PulumiProgram,
    private readonly printed: OutputLines,
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly callTimeoutMs: number,
  ) {
    const req = program.require;
    const grpc = req("@grpc/grpc-js");
    this.proto = req("@pulumi/pulumi/proto/provider_pb");
    this.statusProto = req("@pulumi/pulumi/proto/status_pb");
    this.struct = req("google-protobuf/google/protobuf/struct_pb").Struct;
    const { ResourceProviderClient } = req("@pulumi/pulumi/proto/provider_grpc_pb");
    this.client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  /**
   * Starts `node <@pulumi/pulumi/cmd/dynamic-provider> 127.0.0.1:1` in the program folder (the address is
   * required and unused) with the test's own Node, and waits for the port line.
   */
  static async start(options: PluginOptions = {}): Promise<PulumiPlugin> {
    const program = await preparePulumiProgram();
    const script = program.require.resolve("@pulumi/pulumi/cmd/dynamic-provider");
    const child = spawn(process.execPath, [script, "127.0.0.1:1"], {
      cwd: program.dir,
      env: {
        ...process.env,
        PULUMI_NODEJS_PROJECT: "lvsnap-test",
        PULUMI_PROJECT: "lvsnap-test",
        PULUMI_NODEJS_STACK: "test",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = new OutputLines();
    const port = await new Promise<number>((resolvePort, reject) => {
      // Loading @pulumi/pulumi takes seconds of CPU: on a busy two-core host, many of them.
      const timer = setTimeout(
        () =>
          reject(
            new Error(`plugin printed no port within ${PORT_TIMEOUT_MS} ms:\n${output.lines.join("\n")}`),
          ),
        PORT_TIMEOUT_MS,
      );
      const stdout = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      stdout.once("line", (line) => {
        clearTimeout(timer);
        const value = Number(line.trim());
        if (Number.isInteger(value) && value > 0) resolvePort(value);
        else reject(new Error(`plugin's first line is not a port: ${line}`));
        stdout.on("line", output.add);
      });
      createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", output.add);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`plugin exited with ${code}:\n${output.lines.join("\n")}`));
      });
    }).catch((error: unknown) => {
      child.kill("SIGKILL"); // a plugin that never became usable is not left running
      throw error;
    });
    return new PulumiPlugin(program, output, child, port, options.callTimeoutMs ?? 180_000);
  }

  /** Every line the plugin printed after its port line (stdout and stderr): what a user would see. */
  get output(): readonly string[] {
    return this.printed.lines;
  }

  /**
   * Resolves with the first line the plugin printed (after its port line) that `matches` accepts, waiting for
   * it up to `timeoutMs`. A gRPC reply and the lines the plugin printed before sending it travel on different
   * channels, so the reply can arrive first: wait for a line, never look for it right after a call.
   */
  waitForOutput(matches: (line: string) => boolean, timeoutMs = 60_000): Promise<string> {
    return this.printed.waitFor(matches, timeoutMs);
  }

  /** Process id of the plugin's Node process (undefined if the spawn failed); read-only, for /proc figures. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * The `__provider` value a Pulumi program would send: a shim exported by the packed package
   * (`snapshotResourceProvider`, `revertResourceProvider`), serialized as `dynamic.Resource` does it.
   */
  async serializedProvider(exportName = "snapshotResourceProvider"): Promise<string> {
    const pulumi = this.program.require("@pulumi/pulumi");
    const provider = this.program.require("pulumi-libvirt-snapshot")[exportName];
    if (provider === undefined) throw new Error(`pulumi-libvirt-snapshot exports no ${exportName}`);
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    return serialized.text;
  }

  private call<T>(method: string, request: Any, map: (response: Any) => T): Promise<T> {
    return new Promise((resolveCall, reject) => {
      const deadline = new Date(Date.now() + this.callTimeoutMs);
      this.client[method](request, { deadline }, (error: Any, response: Any) => {
        if (error) reject(this.callError(method, error));
        else resolveCall(map(response));
      });
    });
  }

  private callError(method: string, error: Any): PluginCallError {
    let initFailure: InitFailure | null = null;
    const trailer = error.metadata?.get?.("grpc-status-details-bin")?.[0];
    if (trailer) {
      const status = this.statusProto.Status.deserializeBinary(new Uint8Array(trailer));
      for (const detail of status.getDetailsList()) {
        if (detail.getTypeName() !== "pulumirpc.ErrorResourceInitFailed") continue;
        const failed = detail.unpack(
          this.proto.ErrorResourceInitFailed.deserializeBinary,
          "pulumirpc.ErrorResourceInitFailed",
        );
        initFailure = {
          id: failed.getId(),
          properties: failed.getProperties()?.toJavaScript() ?? {},
          reasons: failed.getReasonsList(),
        };
      }
    }
    return new PluginCallError(method, error.code, error.details ?? String(error.message), initFailure);
  }

  private toStruct(value: Props): Any {
    return this.struct.fromJavaScript(value);
  }

  /** Configure: `config` holds namespaced keys (`libvirt-snapshot:uri`); wrap secrets with `secret()`. */
  configure(config: Props): Promise<{ acceptSecrets: boolean; supportsPreview: boolean }> {
    const request = new this.proto.ConfigureRequest();
    request.setArgs(this.toStruct(config));
    return this.call("configure", request, (r) => ({
      acceptSecrets: r.getAcceptsecrets(),
      supportsPreview: r.getSupportspreview(),
    }));
  }

  check(
    urn: string,
    olds: Props,
    news: Props,
  ): Promise<{ inputs: Props; failures: { property: string; reason: string }[] }> {
    const request = new this.proto.CheckRequest();
    request.setUrn(urn);
    request.setOlds(this.toStruct(olds));
    request.setNews(this.toStruct(news));
    return this.call("check", request, (r) => ({
      inputs: r.getInputs()?.toJavaScript() ?? {},
      failures: r.getFailuresList().map((f: Any) => ({ property: f.getProperty(), reason: f.getReason() })),
    }));
  }

  diff(
    urn: string,
    id: string,
    olds: Props,
    news: Props,
  ): Promise<{ changes: DiffChanges; replaces: string[]; deleteBeforeReplace: boolean }> {
    const request = new this.proto.DiffRequest();
    request.setUrn(urn);
    request.setId(id);
    request.setOlds(this.toStruct(olds));
    request.setNews(this.toStruct(news));
    const names: Record<number, DiffChanges> = { 0: "unknown", 1: "none", 2: "some" };
    return this.call("diff", request, (r) => ({
      changes: names[r.getChanges()] ?? "unknown",
      replaces: r.getReplacesList(),
      deleteBeforeReplace: r.getDeletebeforereplace(),
    }));
  }

  create(urn: string, properties: Props): Promise<{ id: string; properties: Props }> {
    const request = new this.proto.CreateRequest();
    request.setUrn(urn);
    request.setProperties(this.toStruct(properties));
    return this.call("create", request, (r) => ({
      id: r.getId(),
      properties: r.getProperties()?.toJavaScript() ?? {},
    }));
  }

  read(urn: string, id: string, properties: Props): Promise<{ id: string; properties: Props }> {
    const request = new this.proto.ReadRequest();
    request.setUrn(urn);
    request.setId(id);
    request.setProperties(this.toStruct(properties));
    return this.call("read", request, (r) => ({
      id: r.getId(),
      properties: r.getProperties()?.toJavaScript() ?? {},
    }));
  }

  update(urn: string, id: string, olds: Props, news: Props): Promise<{ properties: Props }> {
    const request = new this.proto.UpdateRequest();
    request.setUrn(urn);
    request.setId(id);
    request.setOlds(this.toStruct(olds));
    request.setNews(this.toStruct(news));
    return this.call("update", request, (r) => ({ properties: r.getProperties()?.toJavaScript() ?? {} }));
  }

  delete(urn: string, id: string, properties: Props): Promise<void> {
    const request = new this.proto.DeleteRequest();
    request.setUrn(urn);
    request.setId(id);
    request.setProperties(this.toStruct(properties));
    return this.call("delete", request, () => undefined);
  }

  /** Closes the client and kills the plugin process itself; safe to call twice. */
  async stop(): Promise<void> {
    this.client.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGKILL");
    await exited;
  }
}

/** A URN for a Snapshot resource of the test stack. */
export function snapshotUrn(name: string): string {
  return `urn:pulumi:test::lvsnap-test::${SNAPSHOT_TYPE}::${name}`;
}
