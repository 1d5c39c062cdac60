//! `infra/template.yaml` read on its own (not through `CfnInclude`), in CloudFormation's JSON form: the short
//! tags (`!Ref`, `!Sub`, …) become their `Fn::` objects. The tests compare the synthesized stack against it.

import * as fs from "node:fs";

import { parse, type Tags } from "yaml";

type Collection = { toJSON(): unknown };

const FUNCTIONS = ["Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub", "Transform"];
const CONDITIONS = ["And", "Equals", "If", "Not", "Or"];

const customTags: Tags = [
  { tag: "!Ref", resolve: (value: string) => ({ Ref: value }) },
  { tag: "!Condition", resolve: (value: string) => ({ Condition: value }) },
  {
    tag: "!GetAtt",
    resolve: (value: string) => {
      const dot = value.indexOf(".");
      return { "Fn::GetAtt": [value.slice(0, dot), value.slice(dot + 1)] };
    },
  },
  { tag: "!GetAtt", collection: "seq", resolve: (seq: Collection) => ({ "Fn::GetAtt": seq.toJSON() }) },
  ...[...FUNCTIONS, ...CONDITIONS].flatMap((name) => [
    { tag: `!${name}`, resolve: (value: string) => ({ [`Fn::${name}`]: value }) },
    ...(["seq", "map"] as const).map((collection) => ({
      tag: `!${name}`,
      collection,
      resolve: (node: Collection) => ({ [`Fn::${name}`]: node.toJSON() }),
    })),
  ]),
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readSamTemplate(file: string): Record<string, any> {
  return parse(fs.readFileSync(file, "utf8"), { customTags, maxAliasCount: -1 });
}
