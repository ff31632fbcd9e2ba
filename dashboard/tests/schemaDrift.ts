// How a zod schema of the dashboard differs from the answer the server describes (OpenAPI 3.0 schemas,
// the dialect zod's toJSONSchema writes with target 'openapi-3.0'). Every field the dashboard reads must
// be described with the same type, nullability, presence and enum; fields the dashboard ignores may exist.
import { z } from 'zod'

interface Schema {
  type?: string
  nullable?: boolean
  enum?: unknown[]
  anyOf?: Schema[]
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean | Schema
  items?: Schema
}

export function asOpenApi(schema: z.ZodType): Schema {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'output' }) as Schema
}

const isAnything = (s: Schema) => s.type === undefined && !s.anyOf && !s.enum

export function drift(ours: Schema, theirs: Schema, at = 'answer'): string[] {
  if (isAnything(ours)) return []
  if (isAnything(theirs)) return [`${at}: the dashboard expects ${ours.type ?? 'a union'}, the server describes any value`]
  const problems: string[] = []
  if (!!ours.nullable !== !!theirs.nullable) {
    problems.push(theirs.nullable ? `${at}: the server may send null, the dashboard refuses it` : `${at}: the dashboard allows null, the server never sends it`)
  }
  if (ours.anyOf) {
    // A union accepts the described value when one of its branches does.
    const fits = ours.anyOf.some((branch) => drift({ ...branch, nullable: theirs.nullable }, theirs, at).length === 0)
    return fits ? problems : [...problems, `${at}: no branch of the dashboard's union accepts the server's ${theirs.type}`]
  }
  if (theirs.anyOf) return [...problems, `${at}: the server describes a union, the dashboard expects ${ours.type}`]
  const integerAsNumber = ours.type === 'number' && theirs.type === 'integer'
  if (ours.type !== theirs.type && !integerAsNumber) {
    return [...problems, `${at}: the dashboard expects ${ours.type}, the server sends ${theirs.type}`]
  }
  if (ours.enum || theirs.enum) {
    const mine = [...(ours.enum ?? ['(any)'])].map(String).sort()
    const served = [...(theirs.enum ?? ['(any)'])].map(String).sort()
    if (mine.join() !== served.join()) problems.push(`${at}: the dashboard knows ${mine.join(', ')}; the server sends ${served.join(', ')}`)
  }
  if (ours.type === 'array') problems.push(...drift(ours.items ?? {}, theirs.items ?? {}, `${at}[]`))
  if (ours.type === 'object') problems.push(...objectDrift(ours, theirs, at))
  return problems
}

function objectDrift(ours: Schema, theirs: Schema, at: string): string[] {
  const problems: string[] = []
  const described = theirs.properties ?? {}
  const required = new Set(theirs.required ?? [])
  const weRequire = new Set(ours.required ?? [])
  for (const [name, field] of Object.entries(ours.properties ?? {})) {
    const where = `${at}.${name}`
    if (!(name in described)) {
      problems.push(`${where}: the dashboard reads it, the server does not describe it`)
      continue
    }
    if (weRequire.has(name) !== required.has(name)) {
      problems.push(required.has(name) ? `${where}: always sent, but optional in the dashboard` : `${where}: may be absent, but required by the dashboard`)
    }
    problems.push(...drift(field, described[name], where))
  }
  // A map keyed by data (z.record): its values must match.
  if (!ours.properties && typeof ours.additionalProperties === 'object') {
    const values = typeof theirs.additionalProperties === 'object' ? theirs.additionalProperties : null
    if (!values) problems.push(`${at}: the dashboard expects a map, the server describes fixed fields`)
    else problems.push(...drift(ours.additionalProperties, values, `${at}{}`))
  }
  return problems
}
