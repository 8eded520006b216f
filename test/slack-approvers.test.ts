import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { readFileSync } from "node:fs";
import type { webApi } from "@slack/bolt";
import { parseConfig } from "../src/config.js";
import { ApproverDirectory } from "../src/slack/approvers.js";

/** Just the two user-group methods the directory calls, counting calls. */
function groupsClient(groups: Record<string, { handle: string; users: string[] }>) {
  const calls = { users: 0, list: 0 };
  const client = {
    usergroups: {
      users: {
        list: async ({ usergroup }: { usergroup: string }) => {
          calls.users += 1;
          const g = groups[usergroup];
          if (!g) throw new Error("no_such_subteam");
          return { ok: true, users: g.users };
        },
      },
      list: async () => {
        calls.list += 1;
        return { ok: true, usergroups: Object.entries(groups).map(([id, g]) => ({ id, handle: g.handle })) };
      },
    },
  } as unknown as webApi.WebClient;
  return { client, calls };
}

const config = parseConfig({
  deployments: {
    prod: { provider: "sandbox", approvers: ["U0ALICE42", "S0ONCALL", "@dba"], policy: { twoPersonRule: ["delete"] } },
    staging: { provider: "sandbox", approvers: ["leads"] },
  },
  groups: { leads: ["U0CAROL42", "alice"] },
}, "test").config;

describe("approver resolution for Slack", () => {
  it("verifies user-group membership by id and by handle, caches it for the TTL, and labels approvers as mentions", async () => {
    let now = 0;
    const { client, calls } = groupsClient({ S0ONCALL: { handle: "oncall", users: ["U0BOB4242"] }, S0DBA: { handle: "dba", users: ["U0BOB4242", "U0DAVE42"] } });
    const dir = new ApproverDirectory(client, config, 60_000, () => now);
    expect(await dir.actor("U0BOB4242", "prod")).toEqual({ user: "U0BOB4242", groups: ["S0ONCALL", "@dba"] });
    expect(await dir.actor("U0DAVE42", "prod")).toEqual({ user: "U0DAVE42", groups: ["@dba"] });
    expect(await dir.actor("U0ALICE42", "prod")).toEqual({ user: "U0ALICE42", groups: [] }); // matched directly by the engine
    expect(calls).toEqual({ users: 2, list: 1 });
    now += 61_000;
    await dir.actor("U0BOB4242", "prod");
    expect(calls.users).toBe(4);
    expect(await dir.labels("prod")).toEqual(["<@U0ALICE42>", "<!subteam^S0ONCALL>", "<!subteam^S0DBA|@dba>"]);
    expect(await dir.labels("staging")).toEqual(["leads"]);
    expect(await dir.mayApprove("U0DAVE42", "prod", { kind: "traffic", requestedBy: "U0CAROL42" })).toBe(true);
    expect(await dir.mayApprove("U0DAVE42", "prod", { kind: "delete", requestedBy: "U0DAVE42" })).toBe(false);
    expect(await dir.mayApprove("U0MALLORY4", "prod", { kind: "traffic", requestedBy: "U0CAROL42" })).toBe(false);
  });

  it("a failed membership lookup is an error naming the group, and is not cached", async () => {
    const { client, calls } = groupsClient({});
    const dir = new ApproverDirectory(client, config);
    await expect(dir.actor("U0BOB4242", "prod")).rejects.toThrow(/could not check membership of the Slack user group S0ONCALL/);
    await expect(dir.actor("U0BOB4242", "prod")).rejects.toThrow(/S0ONCALL/);
    expect(calls.users).toBe(2);
  });
});

describe("slack/manifest.yaml", () => {
  it("asks for the events, scopes, command and features the listeners use", () => {
    const m = parseYaml(readFileSync(new URL("../slack/manifest.yaml", import.meta.url), "utf8")) as {
      features: { app_home: { home_tab_enabled: boolean }; slash_commands: { command: string }[] };
      oauth_config: { scopes: { bot: string[] } };
      settings: { event_subscriptions: { bot_events: string[] }; interactivity: { is_enabled: boolean } };
    };
    expect(m.settings.event_subscriptions.bot_events.sort()).toEqual(["app_home_opened", "app_mention", "message.channels", "message.groups", "message.im"]);
    expect(m.settings.interactivity.is_enabled).toBe(true);
    expect(m.features.slash_commands.map((c) => c.command)).toEqual(["/honua"]);
    expect(m.features.app_home.home_tab_enabled).toBe(true);
    for (const scope of ["app_mentions:read", "chat:write", "commands", "files:write", "usergroups:read", "im:history", "channels:history"]) {
      expect(m.oauth_config.scopes.bot).toContain(scope);
    }
  });
});
