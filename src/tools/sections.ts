import type { CapabilityId } from "../core/capabilities.js";
import { AgentError } from "../core/errors.js";
import type { ChangeSection } from "../core/sections.js";
import { html, type Html } from "../core/html.js";
import { CACHE_EXAMPLE } from "./cache/section.js";
import { CONFIG_EXAMPLE } from "./config/section.js";
import { COST_EXAMPLE } from "./cost/section.js";
import { DATABASE_EXAMPLE } from "./database/section.js";
import { METRICS_EXAMPLE } from "./metrics/section.js";
import { STORAGE_EXAMPLE } from "./storage/section.js";
import { TILES_EXAMPLE } from "./tiles/section.js";
import { TRAFFIC_EXAMPLE } from "./traffic/section.js";

/** A `local`/`aws` deployment's sections, as far as this check needs to see them. */
export type SectionsView = Partial<Record<CapabilityId, unknown>> & { provider: string; appsettings?: string | undefined };

/** What each capability's section is for and how to write one, for the message that asks for it. */
const SECTIONS: Partial<Record<CapabilityId, { what: string; example: string; optional?: boolean }>> = {
  metrics: { what: "Honua's metrics (p95, errors, hit ratio) for baselines and monitoring windows", example: METRICS_EXAMPLE },
  config: { what: "the Honua configuration the agent edits", example: CONFIG_EXAMPLE },
  cache: { what: "the cache", example: CACHE_EXAMPLE },
  traffic: { what: "how traffic moves onto the change", example: TRAFFIC_EXAMPLE },
  database: { what: "Honua's PostgreSQL/PostGIS, whose schema the change reads and alters", example: DATABASE_EXAMPLE },
  storage: { what: "the raster storage backends and the STAC catalog that points at them", example: STORAGE_EXAMPLE },
  // Without these the run still works: nothing is warmed, cost counts only what the price table knows.
  tiles: { what: "which tiles are popular, for warming", example: TILES_EXAMPLE, optional: true },
  cost: { what: "what the deployment costs besides what the price table knows", example: COST_EXAMPLE, optional: true },
};

/** Adds to the table what a capability's own folder says about its section (one call per capability). */
export function describeSection(id: CapabilityId, info: { what: string; example: string; optional?: boolean }): void {
  SECTIONS[id] = info;
}

const present = (d: SectionsView, id: CapabilityId): boolean => (id === "config" ? d.config !== undefined || d.appsettings !== undefined : d[id] !== undefined);

/**
 * The sections a workflow needs that a `local`/`aws` deployment lacks, each named with an example: asked when the
 * workflow is planned there, not at config load (a deployment that only ever runs schema changes needs no cache).
 */
export function requireSections(deployment: string, d: SectionsView, needs: readonly CapabilityId[], what: string): void {
  if (d.provider === "sandbox") return;
  const missing = needs.filter((id) => !present(d, id) && !SECTIONS[id]?.optional);
  if (missing.length === 0) return;
  const lines = missing.map((id) => `${id}: ${SECTIONS[id]?.what ?? id} (${SECTIONS[id]?.example ?? `a ${id} section`})`);
  throw new AgentError("bad-input", `deployment ${deployment} (provider ${d.provider}) needs ${missing.length === 1 ? "a section" : "sections"} in honua-agent.yaml to ${what}:\n  - ${lines.join("\n  - ")}\n(see docs/local.md)`);
}

const cellText = (v: string | number | boolean | null): string => (v === null ? "" : String(v));

/**
 * A change section as HTML for the transcript viewer: the same data the terminal and the Slack card show
 * (`renderSection`), one renderer per kind, every value escaped.
 */
export function renderSectionHtml(s: ChangeSection): Html {
  switch (s.kind) {
    case "sql":
      return html`<section class="change sql"><h4>${s.title}</h4><ol>${s.statements.map(
        (st) => html`<li><pre class="sql">${st.rewritten ?? st.original}</pre>${st.rewritten ? html`<div class="note">you gave: <code>${st.original}</code></div>` : ""}<div class="lock">lock: ${st.lock}${st.estimate ? ` · ${st.estimate}` : ""}</div>${st.notes.map((n) => html`<div class="note">note: ${n}</div>`)}</li>`,
      )}</ol></section>`;
    case "mapping":
      return html`<section class="change mapping"><h4>${s.title}</h4><table><thead><tr><th>from</th><th>to</th><th>transform</th></tr></thead><tbody>${s.rows.map(
        (r) => html`<tr><td><code>${r.from}</code></td><td><code>${r.to}</code></td><td>${r.transform ?? ""}</td></tr>`,
      )}</tbody></table></section>`;
    case "table":
      return html`<section class="change table"><h4>${s.title}</h4><table><thead><tr>${s.columns.map((c) => html`<th>${c}</th>`)}</tr></thead><tbody>${s.rows.map(
        (r) => html`<tr>${r.map((c) => html`<td>${cellText(c)}</td>`)}</tr>`,
      )}</tbody></table></section>`;
    case "textDiff":
      return html`<section class="change diff"><h4>${s.title}${s.path ? html` <code>${s.path}</code>` : ""}</h4><pre class="diff">${s.diff.split("\n").map(
        (l) => html`<span class="${l.startsWith("+") && !l.startsWith("+++") ? "add" : l.startsWith("-") && !l.startsWith("---") ? "del" : l.startsWith("@@") ? "hunk" : "ctx"}">${l}</span>\n`,
      )}</pre></section>`;
  }
}
