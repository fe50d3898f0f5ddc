// Schema pieces shared by Istio's kinds: StringMatch, workload selectors, header operations, ports.
import { z } from "zod";
import { Codes } from "../codes.js";
import { addIssue, labels, obj, port, regex } from "../schema.js";

/** Istio's StringMatch: exactly one of exact, prefix, regex. */
export const stringMatch = () =>
  obj({ exact: z.string().optional(), prefix: z.string().optional(), regex: regex().optional() }).superRefine(
    (m, ctx) => {
      const set = [m.exact, m.prefix, m.regex].filter((v) => v !== undefined).length;
      if (set !== 1)
        addIssue(
          ctx,
          Codes.ONE_OF,
          set === 0
            ? "a string match needs one of exact, prefix or regex"
            : "use only one of exact, prefix or regex",
        );
    },
  );

/** A StringMatch that may be empty (`{}`), meaning "present" for headers and query parameters. */
export const presenceOrStringMatch = () =>
  obj({ exact: z.string().optional(), prefix: z.string().optional(), regex: regex().optional() }).superRefine(
    (m, ctx) => {
      if ([m.exact, m.prefix, m.regex].filter((v) => v !== undefined).length > 1)
        addIssue(ctx, Codes.ONE_OF, "use only one of exact, prefix or regex");
    },
  );

export type StringMatchSpec = { exact?: string; prefix?: string; regex?: string };

export const workloadSelector = () => obj({ matchLabels: labels().optional() });
export const workloadSelectorLabels = () => obj({ labels: labels().optional() });

export const portSelector = () => obj({ number: port() });

export const headerOperations = () =>
  obj({
    set: z.record(z.string(), z.string()).optional(),
    add: z.record(z.string(), z.string()).optional(),
    remove: z.array(z.string()).optional(),
  });

export const exportTo = () => z.array(z.string()).optional();

/** The Istio network API versions the networking kinds are served at. */
export const NETWORKING_VERSIONS = ["v1alpha3", "v1beta1", "v1"] as const;
