import type { webApi } from "@slack/bolt";
import type { AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { SLACK_GROUP_ID, SLACK_USER_ID, formatApprover } from "./blocks.js";

type WebClient = webApi.WebClient;

/** Who clicks, as the engine takes it: the Slack user id plus the Slack user groups verified to contain them. */
export interface SlackActor {
  user: string;
  groups: string[];
}

const isSlackGroup = (entry: string): boolean => SLACK_GROUP_ID.test(entry) || /^@[a-z0-9._-]+$/i.test(entry);

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

/**
 * Resolves deployment approvers for Slack. A config entry that is a Slack user id (U…) matches the clicking
 * user directly (the engine does that); a Slack user-group id (S…) or handle (@oncall) is checked here
 * against `usergroups.users.list` and, when the user is a member, passed to the engine in `Actor.groups`.
 * Memberships are cached for `ttlMs` so a burst of clicks costs one API call per group.
 */
export class ApproverDirectory {
  private readonly members = new Map<string, Cached<Set<string>>>();
  private handles: Cached<Map<string, string>> | undefined;

  constructor(
    private readonly client: WebClient,
    private readonly config: AgentConfig,
    private readonly ttlMs = 5 * 60_000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** The deployment's approver entries, config groups expanded one level (as the engine expands them). */
  entries(deployment: string): string[] {
    const d = this.config.deployments[deployment];
    if (!d) return [];
    return [...new Set(d.approvers.flatMap((a) => this.config.groups[a] ?? [a]))];
  }

  /**
   * The Slack user groups among a deployment's approvers that `user` belongs to. A failed lookup fails the
   * call (membership cannot be assumed), except for a user listed by id, who approves without any group.
   */
  async actor(user: string, deployment: string): Promise<SlackActor> {
    const entries = this.entries(deployment);
    const direct = entries.includes(user);
    const groups: string[] = [];
    for (const entry of entries.filter(isSlackGroup)) {
      try {
        if ((await this.membersOf(entry)).has(user)) groups.push(entry);
      } catch (e) {
        if (!direct) throw e;
      }
    }
    return { user, groups };
  }

  /** Approvers as mentions for cards and warnings. */
  async labels(deployment: string): Promise<string[]> {
    const d = this.config.deployments[deployment];
    if (!d) return [];
    const needHandles = d.approvers.some((a) => a.startsWith("@")) || this.entries(deployment).some((a) => a.startsWith("@"));
    const handles = needHandles ? await this.handleIds().catch(() => new Map<string, string>()) : new Map<string, string>();
    // A config group of Slack ids reads better as its members' mentions; a config group of names stays its name.
    return d.approvers.flatMap((a) => {
      const group = this.config.groups[a];
      if (group && group.every((m) => SLACK_USER_ID.test(m) || isSlackGroup(m))) return group.map((m) => formatApprover(m, handles));
      return [formatApprover(a, handles)];
    });
  }

  /** Mirrors the engine's policy for display only (App Home); the engine decides every click itself. */
  async mayApprove(user: string, deployment: string, gate: { kind: string; requestedBy: string }): Promise<boolean> {
    const d = this.config.deployments[deployment];
    if (!d) return false;
    const entries = this.entries(deployment);
    let member = entries.includes(user);
    if (!member) member = (await this.actor(user, deployment).catch(() => ({ user, groups: [] }))).groups.length > 0;
    if (!member) return false;
    return !(d.policy.twoPersonRule.some((k) => k === gate.kind) && user === gate.requestedBy);
  }

  private fresh<T>(c: Cached<T> | undefined): c is Cached<T> {
    return c !== undefined && this.nowMs() - c.at < this.ttlMs;
  }

  private async membersOf(entry: string): Promise<Set<string>> {
    const hit = this.members.get(entry);
    if (this.fresh(hit)) return hit.value;
    const value = (async () => {
      const id = entry.startsWith("@") ? (await this.handleIds()).get(entry.slice(1).toLowerCase()) : entry;
      if (!id) return new Set<string>();
      const res = await this.client.usergroups.users.list({ usergroup: id }).catch((e: unknown) => {
        throw new AgentError("unavailable", `could not check membership of the Slack user group ${entry}: ${e instanceof Error ? e.message : String(e)}`);
      });
      return new Set(res.users ?? []);
    })();
    this.members.set(entry, { at: this.nowMs(), value });
    value.catch(() => this.members.delete(entry)); // a failed lookup is not cached
    return value;
  }

  private async handleIds(): Promise<Map<string, string>> {
    if (this.fresh(this.handles)) return this.handles.value;
    const value = this.client.usergroups.list({}).then((res) => new Map((res.usergroups ?? []).filter((g) => g.handle && g.id).map((g) => [g.handle!.toLowerCase(), g.id!])));
    this.handles = { at: this.nowMs(), value };
    value.catch(() => (this.handles = undefined));
    return value;
  }
}
