import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import { call, callJson } from "./http.js";
import { DashboardModel, type DashboardState, type DashboardSummary } from "./types.js";

const Search = z.array(z.looseObject({ uid: z.string(), title: z.string(), type: z.string().optional() }));
const Got = z.looseObject({ dashboard: z.looseObject({ version: z.number().int().optional() }), meta: z.looseObject({}).optional() });
const Version = z.looseObject({ id: z.number().int().optional(), version: z.number().int(), message: z.string().nullable().optional() });
/** Grafana 9/10 answer an array; 11 wraps it in `{ versions, continueToken }`. */
const Versions = z.union([z.array(Version), z.looseObject({ versions: z.array(Version) }).transform((x) => x.versions)]);
const Saved = z.looseObject({ uid: z.string(), version: z.number().int() });
const VersionData = z.looseObject({ data: z.looseObject({}) });

const comparable = (m: Record<string, unknown>): string => {
  const { version: _v, id: _i, ...rest } = m;
  return JSON.stringify(rest, Object.keys(rest).sort());
};

/** Grafana's HTTP API: `/api/search`, `/api/dashboards/db`, `/api/dashboards/uid/:uid` with its versions and restore. */
export class GrafanaClient {
  constructor(private readonly base: string, token: string | null | (() => string | null), private readonly folderUid: string | null) {
    this.token = typeof token === "function" ? token : () => token;
  }
  private readonly token: () => string | null;
  private headers(json = false): Record<string, string> {
    const token = this.token();
    return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(json ? { "content-type": "application/json" } : {}), accept: "application/json" };
  }
  private url(path: string): string {
    return `${this.base.replace(/\/$/, "")}${path}`;
  }

  async list(): Promise<DashboardSummary[]> {
    const found = Search.parse(await callJson("Grafana", this.url("/api/search?type=dash-db&limit=5000"), { headers: this.headers() }));
    const out: DashboardSummary[] = [];
    for (const d of found) {
      const got = await this.get(d.uid);
      if (got) out.push({ uid: d.uid, title: d.title, version: got.version });
    }
    return out;
  }

  async get(uid: string): Promise<{ model: DashboardModel; version: number } | null> {
    const r = await call("Grafana", this.url(`/api/dashboards/uid/${encodeURIComponent(uid)}`), { headers: this.headers() });
    if (r.status === 404) return null;
    if (r.status !== 200) throw new AgentError("failed", `Grafana answered ${r.status} for dashboard ${uid}: ${r.text.slice(0, 200)}`);
    const got = Got.parse(JSON.parse(r.text));
    return { model: DashboardModel.parse(got.dashboard), version: got.dashboard.version ?? 0 };
  }

  async versions(uid: string): Promise<z.infer<typeof Version>[]> {
    const r = await call("Grafana", this.url(`/api/dashboards/uid/${encodeURIComponent(uid)}/versions?limit=100`), { headers: this.headers() });
    if (r.status === 404) return [];
    if (r.status !== 200) throw new AgentError("failed", `Grafana answered ${r.status} for the versions of ${uid}: ${r.text.slice(0, 200)}`);
    return Versions.parse(JSON.parse(r.text));
  }

  /** Saves with `key` as the version message; a version already carrying it means a replay: nothing is saved again. */
  async save(model: DashboardModel, key: string): Promise<{ uid: string; version: number }> {
    if (!model.uid) throw new AgentError("bad-input", `dashboard ${model.title} has no uid`);
    const mine = (await this.versions(model.uid)).find((v) => v.message === key);
    if (mine) return { uid: model.uid, version: mine.version };
    const current = await this.get(model.uid);
    if (current && typeof model.version !== "number") throw new AgentError("conflict", `dashboard ${model.uid} was created in Grafana since the change was designed; nothing was overwritten`);
    // The version it was designed against goes back: one someone saved in between is refused (412), never overwritten.
    const dashboard = { ...model, id: null };
    const body = { dashboard, overwrite: false, message: key, ...(this.folderUid ? { folderUid: this.folderUid } : {}) };
    const r = await call("Grafana", this.url("/api/dashboards/db"), { method: "POST", headers: this.headers(true), body: JSON.stringify(body) });
    if (r.status === 412) throw new AgentError("conflict", `dashboard ${model.title} changed in Grafana since it was read (${r.text.slice(0, 200)}); ask again to design against what it holds now`);
    if (r.status !== 200) throw new AgentError("failed", `Grafana refused to save dashboard ${model.title}: ${r.status} ${r.text.slice(0, 200)}`);
    return Saved.parse(JSON.parse(r.text));
  }

  /** Back to `version` (Grafana writes it as a new version), or deleted when the run created it; a replay changes nothing. */
  async restore(uid: string, state: DashboardState, key: string): Promise<void> {
    if ("recreate" in state) {
      if (await this.get(state.recreate.uid)) return;
      const { version: _v, id: _i, ...model } = state.recreate;
      await this.save(DashboardModel.parse(model), key);
      return;
    }
    if ("absent" in state) {
      const r = await call("Grafana", this.url(`/api/dashboards/uid/${encodeURIComponent(uid)}`), { method: "DELETE", headers: this.headers() });
      if (r.status !== 200 && r.status !== 404) throw new AgentError("failed", `Grafana did not delete dashboard ${uid}: ${r.status} ${r.text.slice(0, 200)}`);
      return;
    }
    const current = await this.get(uid);
    if (!current) throw new AgentError("failed", `dashboard ${uid} is gone from Grafana; version ${state.version} cannot be restored`);
    const v = (await this.versions(uid)).find((x) => x.version === state.version);
    if (v?.id !== undefined) {
      const data = VersionData.parse(await callJson("Grafana", this.url(`/api/dashboards/uid/${encodeURIComponent(uid)}/versions/${v.id}`), { headers: this.headers() })).data;
      if (comparable(data) === comparable(current.model)) return;
    }
    const r = await call("Grafana", this.url(`/api/dashboards/uid/${encodeURIComponent(uid)}/restore`), { method: "POST", headers: this.headers(true), body: JSON.stringify({ version: state.version }) });
    if (r.status !== 200) throw new AgentError("failed", `Grafana did not restore dashboard ${uid} to version ${state.version}: ${r.status} ${r.text.slice(0, 200)}`);
  }
}
