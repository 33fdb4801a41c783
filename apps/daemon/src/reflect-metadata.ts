// The part of the Reflect metadata API (the `reflect-metadata` proposal) that
// @peculiar/x509's dependency tsyringe calls at load time: it refuses to load
// without `Reflect.getMetadata`. The three functions it uses are small enough
// to keep here instead of adding a polyfill package for them. Import it
// through ./x509.ts, never directly.

type MetadataTarget = object;
type MetadataTable = Map<unknown, unknown>;

const metadataByTarget = new WeakMap<MetadataTarget, Map<PropertyKey | undefined, MetadataTable>>();

function ownTable(target: MetadataTarget, propertyKey: PropertyKey | undefined, create: boolean) {
  let byProperty = metadataByTarget.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    metadataByTarget.set(target, byProperty);
  }
  let table = byProperty.get(propertyKey);
  if (!table && create) {
    table = new Map();
    byProperty.set(propertyKey, table);
  }
  return table;
}

function getOwnMetadata(key: unknown, target: MetadataTarget, propertyKey?: PropertyKey): unknown {
  return ownTable(target, propertyKey, false)?.get(key);
}

function getMetadata(key: unknown, target: MetadataTarget, propertyKey?: PropertyKey): unknown {
  // Metadata is inherited along the prototype chain, as in the proposal.
  for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current)) {
    const table = ownTable(current, propertyKey, false);
    if (table?.has(key)) return table.get(key);
  }
  return undefined;
}

function defineMetadata(
  key: unknown,
  value: unknown,
  target: MetadataTarget,
  propertyKey?: PropertyKey,
): void {
  ownTable(target, propertyKey, true)?.set(key, value);
}

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== "function") {
  Object.assign(reflect, { getMetadata, getOwnMetadata, defineMetadata });
}
