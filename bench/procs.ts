// Process plumbing for the benchmark: free ports, child processes that are always stopped by pid, and
// CPU/memory readings from /proc (utime+stime, VmRSS, VmHWM) for the processes a scenario measures.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every Linux we run on). */
const CLK_TCK = 100;

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used so far, or undefined once it has gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export interface Memory {
  rssKiB: number;
  hwmKiB: number;
}

/** VmRSS (resident now) and VmHWM (peak resident since the process started). */
export function memory(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / CLK_TCK;
}

/**
 * CPU seconds of this process, its reaped children (wrk, h2load: cutime+cstime) and its live
 * descendants: the harness's whole footprint, to tell it apart from other load on the machine.
 */
export function harnessCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const self = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  return self + treeCpuSeconds(processTree(process.pid).slice(1));
}

/** The process and all its descendants (nginx's workers are children of its master). */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e), Number(f[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++)
    for (const [child, ppid] of parent) if (ppid === out[i] && !out.includes(child)) out.push(child);
  return out;
}

/** CPU seconds of a whole process tree. */
export function treeCpuSeconds(pids: readonly number[]): number {
  let s = 0;
  for (const p of pids) s += cpuSeconds(p) ?? 0;
  return s;
}

/** Summed memory of a process tree (RSS of nginx master + worker, say). */
export function treeMemory(pids: readonly number[]): Memory {
  const m = { rssKiB: 0, hwmKiB: 0 };
  for (const p of pids) {
    const x = memory(p);
    if (x) {
      m.rssKiB += x.rssKiB;
      m.hwmKiB += x.hwmKiB;
    }
  }
  return m;
}

/** A child process the harness owns: stopped by its own pid (SIGTERM, then SIGKILL), never by name. */
export class Child {
  readonly exited: Promise<number | null>;
  private stderrTail = "";
  private stdoutText = "";

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.stderr?.on("data", (c: Buffer) => {
      this.stderrTail = (this.stderrTail + c.toString()).slice(-4000);
    });
    proc.stdout?.on("data", (c: Buffer) => {
      if (this.stdoutText.length < 4000) this.stdoutText += c.toString();
    });
  }

  /** The first line the process prints (the origin server prints its ports that way). */
  async firstLine(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdoutText.includes("\n")) {
      if (!this.alive || Date.now() > deadline)
        throw new Error(`${this.name} printed no line: ${this.stderr}`);
      await sleep(20);
    }
    return this.stdoutText.slice(0, this.stdoutText.indexOf("\n"));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const children = new Set<Child>();

export function startChild(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Child {
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  const c = new Child(name, proc);
  children.add(c);
  void c.exited.then(() => children.delete(c));
  return c;
}

/** Stops every child still running (the harness calls this on exit, success or not). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop()));
}

/** Polls until something accepts TCP connections on host:port. */
export async function waitTcp(host: string, port: number, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && !child.alive) throw new Error(`${child.name} exited: ${child.stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} not listening within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Polls until `url` answers 2xx; throws with the child's stderr when it does not in time. */
export async function waitHttpOk(url: string, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child && !child.alive) throw new Error(`${child.name} exited: ${child.stderr}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (${last})${child ? `: ${child.stderr}` : ""}`);
}

/** Formats written result files the way the repository's lint expects (Biome formats JSON and Markdown). */
export function formatResultFiles(files: string[]): void {
  const biome = new URL("../node_modules/.bin/biome", import.meta.url).pathname;
  const r = spawnSync(biome, ["format", "--write", ...files], { encoding: "utf8" });
  if (r.status !== 0) process.stderr.write(`biome format failed (results are still written): ${r.stderr}\n`);
}
