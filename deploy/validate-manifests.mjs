#!/usr/bin/env node
// Checks the Kubernetes manifests before anyone applies them:
//
//   node deploy/validate-manifests.mjs [--release] [folder]   (folder: default deploy/kubernetes beside this script)
//
// 1. Every YAML document of every file in the folder's kustomization.yaml `resources` is validated against the
//    schema of its apiVersion/kind, from the npm package kubernetes-models (validators generated from the
//    Kubernetes API's published OpenAPI spec: types, required fields, formats such as quantities; version 4.5.1,
//    pinned in package.json, covers the Kubernetes 1.33 API and runs on Node 20; 5.x needs Node 22). Strictly:
//    a field the schema does not define (a misspelled `readinessProbee`) is an error, as with `kubectl apply`'s
//    strict field validation. kubernetes-models' validators accept unknown fields, so this script watches which
//    fields the generated validator looks at (a Proxy around the document): the validator reads every property its
//    schema defines and enumerates the keys of maps (labels, resources.limits), so any key it never read is a field
//    the schema does not have.
// 2. The project's own rules ("safe by default", deploy/README.md): every Deployment container has startup,
//    readiness and liveness probes on a port it declares; cpu and memory requests and limits; runs as a non-root
//    user with a read-only root filesystem, no privilege escalation, all capabilities dropped and the RuntimeDefault
//    seccomp profile; a writable /tmp; every emptyDir has a sizeLimit; a NetworkPolicy selects the app: onlinealign
//    pods and lets only those pods reach the silo and gateway ports.
// 3. The perimeter (manifest-perimeter.mjs): no Secret applied (created with kubectl, as deploy/README.md shows),
//    images pinned by digest, no Kubernetes token or role for pods that parse model files and no pod delete for
//    anyone, egress denied by default (the cloud metadata address excepted from every ipBlock), Pod Security
//    labels on the namespace (and the pods pass them), a PodDisruptionBudget per Deployment, TLS for the API and
//    mutual TLS for the silo and gateway ports from their Secrets.
//
// --release: the placeholder image digest is an error too (run it after `kustomize edit set image`).
// Prints one line per problem, `file: kind/name: problem`, and exits 1 if there is any; otherwise prints
// "N documents valid" and exits 0. Exit 2: the folder has no kustomization.yaml, or `npm ci` has not been run.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkPerimeter } from "./manifest-perimeter.mjs";

let YAML;
try {
    YAML = (await import("yaml")).default;
    await import("kubernetes-models/v1/Namespace");
} catch {
    console.error("deploy/validate-manifests.mjs needs the npm packages yaml and kubernetes-models (package.json): run `npm ci` in the repository root");
    process.exit(2);
}

const APP_LABEL = ["app", "onlinealign"];
const NON_ROOT_USER = 1654; // the aspnet image's `app` user (deploy/Dockerfile: USER app)

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const release = argv.includes("--release");
const folder = path.resolve(argv.find(a => !a.startsWith("--")) ?? path.join(here, "kubernetes"));
const problems = [];
let documentCount = 0;

function display(file) {
    const relative = path.relative(process.cwd(), file);
    return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

function report(file, kind, name, problem) {
    problems.push(`${display(file)}: ${kind ?? "?"}/${name ?? "?"}: ${problem}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading: kustomization.yaml, then every document of every resource file.

const kustomizationPath = path.join(folder, "kustomization.yaml");
if (!fs.existsSync(kustomizationPath)) {
    console.error(`${display(kustomizationPath)}: not found (usage: node deploy/validate-manifests.mjs [folder with kustomization.yaml])`);
    process.exit(2);
}

function parseDocuments(file) {
    const text = fs.readFileSync(file, "utf8");
    // YAML 1.1, as kubectl reads manifests (yes/no/on/off are booleans there); duplicate keys are errors.
    const documents = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true, prettyErrors: true });
    const result = [];
    for (const document of documents) {
        for (const error of document.errors) report(file, "yaml", "-", `YAML: ${error.message.split("\n")[0].replace(/:$/, "")}`);
        if (document.errors.length > 0) continue;
        const value = document.toJS({ maxAliasCount: 100 });
        if (value === null || value === undefined) continue; // an empty document (a trailing ---)
        result.push(value);
    }
    return result;
}

const [kustomization] = parseDocuments(kustomizationPath);
if (!isObject(kustomization)) {
    console.error(`${display(kustomizationPath)}: not a Kustomization`);
    process.exit(2);
}
checkKustomization(kustomization);

const resources = [];
for (const entry of Array.isArray(kustomization.resources) ? kustomization.resources : []) {
    const file = path.join(folder, String(entry));
    if (typeof entry !== "string" || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        report(kustomizationPath, "Kustomization", "-", `resources: '${entry}' is not a file in ${display(folder)} (only local files are checked)`);
        continue;
    }
    for (const document of parseDocuments(file)) {
        documentCount++;
        resources.push({ file, document, kind: document?.kind, name: document?.metadata?.name });
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Schemas.

async function validateSchema({ file, document, kind, name }) {
    if (!isObject(document)) return report(file, kind, name, "the document is not a mapping");
    const { apiVersion } = document;
    if (typeof apiVersion !== "string" || typeof kind !== "string")
        return report(file, kind, name, "apiVersion and kind must be strings");
    if (typeof name !== "string" || name.length === 0) report(file, kind, name, "metadata.name is missing");

    let model;
    try {
        // apps/v1 -> kubernetes-models/apps/v1/Deployment, v1 -> kubernetes-models/v1/Service
        const module = await import(`kubernetes-models/${apiVersion}/${kind}`);
        model = module[kind];
    } catch {
        model = undefined;
    }
    if (typeof model?.prototype?.validate !== "function" || model.kind !== kind || model.apiVersion !== apiVersion)
        return report(file, kind, name, `no Kubernetes schema for apiVersion '${apiVersion}', kind '${kind}'`);

    const tracker = new FieldTracker();
    let errors = [];
    try {
        model.prototype.validate.call(tracker.wrap(document, ""));
    } catch (error) {
        if (!Array.isArray(error.errors)) throw error;
        errors = error.errors;
    }
    for (const line of describeSchemaErrors(errors)) report(file, kind, name, line);
    const unread = UNREAD_FIELDS[kind] ?? [];
    for (const unknown of tracker.unknownFields()) {
        if (unread.some(pattern => pattern.test(unknown))) continue;
        report(file, kind, name, `${pretty(unknown)}: unknown field (not in the ${apiVersion} ${kind} schema)`);
    }
}

// Fields whose schema accepts anything, so the generated validator never reads them: they cannot be told from
// unknown fields by watching reads. Found by comparing each model's declared properties with what its validator
// reads (kubernetes-models 4.5.1): only these, in kinds the project does not use today.
const UNREAD_FIELDS = {
    PriorityClass: [/^\/description$/],
    CustomResourceDefinition: [/\/openAPIV3Schema(\/|$)/, /\/additionalPrinterColumns\/\d+\/description$/],
};

/** Records which keys of each object the schema's validator reads; the keys it never reads are not in the schema. */
class FieldTracker {
    constructor() { this.records = []; }

    wrap(value, pointer) {
        if (value === null || typeof value !== "object") return value;
        const record = { pointer, value, read: new Set(), enumerated: false };
        this.records.push(record);
        const children = new Map();
        const tracker = this;
        return new Proxy(value, {
            get(target, key, receiver) {
                const result = Reflect.get(target, key, receiver);
                if (typeof key !== "string") return result;
                record.read.add(key);
                if (!Object.hasOwn(target, key) || result === null || typeof result !== "object") return result;
                if (!children.has(key)) children.set(key, tracker.wrap(result, `${pointer}/${key}`));
                return children.get(key);
            },
            has(target, key) {
                if (typeof key === "string") record.read.add(key);
                return Reflect.has(target, key);
            },
            getOwnPropertyDescriptor(target, key) {
                if (typeof key === "string") record.read.add(key);
                return Reflect.getOwnPropertyDescriptor(target, key);
            },
            // A map (additionalProperties: labels, annotations, resources.limits): every key is validated.
            ownKeys(target) {
                record.enumerated = true;
                return Reflect.ownKeys(target);
            },
        });
    }

    unknownFields() {
        const unknown = [];
        for (const { pointer, value, read, enumerated } of this.records) {
            if (Array.isArray(value) || enumerated) continue;
            for (const key of Object.keys(value)) if (!read.has(key)) unknown.push(`${pointer}/${key}`);
        }
        return unknown;
    }
}

/** Ajv's errors, one line per field; a quantity or int-or-string that fails shows its format error, not the oneOf noise. */
function describeSchemaErrors(errors) {
    const byPath = new Map();
    for (const error of errors) {
        const key = error.instancePath ?? "";
        if (!byPath.has(key)) byPath.set(key, []);
        byPath.get(key).push(error);
    }
    const lines = [];
    for (const [pointer, list] of byPath) {
        let shown = list.filter(e => e.keyword === "format");
        if (shown.length === 0) shown = list.filter(e => !["oneOf", "anyOf"].includes(e.keyword));
        if (shown.length === 0) shown = list;
        const messages = [...new Set(shown.map(e => describeError(e)))];
        lines.push(`${pointer === "" ? "(document)" : pretty(pointer)}: ${messages.join("; ")}`);
    }
    return lines;
}

function describeError(error) {
    if (error.keyword === "required") return `required field '${error.params.missingProperty}' is missing`;
    if (error.keyword === "enum") return `must be one of ${JSON.stringify(error.params.allowedValues)}`;
    return error.message ?? error.keyword;
}

/** /spec/template/spec/containers/0/readinessProbee -> spec.template.spec.containers[0].readinessProbee */
function pretty(pointer) {
    return pointer.split("/").slice(1)
        .map(part => part.replace(/~1/g, "/").replace(/~0/g, "~"))
        .reduce((text, part) => /^\d+$/.test(part) ? `${text}[${part}]` : text === "" ? part : `${text}.${part}`, "");
}

for (const resource of resources) await validateSchema(resource);

// ---------------------------------------------------------------------------------------------------------------
// 2. The project's rules.

function checkKustomization(k) {
    const file = kustomizationPath;
    if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization")
        report(file, k.kind, "-", "must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization");
    if (!Array.isArray(k.resources) || k.resources.length === 0) report(file, "Kustomization", "-", "resources: none listed");
    // A manifest left out of `resources` is silently never applied (a NetworkPolicy that protects nothing).
    const listed = new Set((Array.isArray(k.resources) ? k.resources : []).map(r => path.normalize(String(r))));
    for (const entry of fs.readdirSync(folder)) {
        if (/\.ya?ml$/.test(entry) && entry !== "kustomization.yaml" && !listed.has(entry))
            report(file, "Kustomization", "-", `resources: ${entry} is in the folder but not listed, so it would never be applied`);
    }
}

const deployments = resources.filter(r => isObject(r.document) && ["Deployment", "StatefulSet", "DaemonSet"].includes(r.kind));
const policies = resources.filter(r => isObject(r.document) && r.kind === "NetworkPolicy");
const serviceAccounts = new Set(resources.filter(r => r.kind === "ServiceAccount").map(r => r.name));
const siloPorts = new Map(); // container port -> its name (silo, gateway)

for (const { file, document, kind, name } of deployments) {
    const pod = document.spec?.template?.spec;
    if (!isObject(pod)) { report(file, kind, name, "spec.template.spec is missing"); continue; }
    const podSecurity = isObject(pod.securityContext) ? pod.securityContext : {};
    const problem = text => report(file, kind, name, text);

    if (pod.hostNetwork === true || pod.hostPID === true || pod.hostIPC === true) problem("must not use the host's network, PID or IPC namespace");
    if (pod.serviceAccountName && serviceAccounts.size > 0 && !serviceAccounts.has(pod.serviceAccountName))
        problem(`serviceAccountName '${pod.serviceAccountName}' is not defined by these manifests`);
    if (!labelsInclude(document.spec?.template?.metadata?.labels, APP_LABEL))
        problem(`the pod template must carry the label ${APP_LABEL[0]}: ${APP_LABEL[1]} (the NetworkPolicy selects it)`);

    const volumes = Array.isArray(pod.volumes) ? pod.volumes : [];
    for (const volume of volumes) {
        if (isObject(volume?.emptyDir) && volume.emptyDir.sizeLimit === undefined) problem(`volume '${volume.name}': emptyDir needs a sizeLimit`);
        if (volume?.hostPath !== undefined) problem(`volume '${volume.name}': hostPath volumes are not allowed`);
    }

    const containers = Array.isArray(pod.containers) ? pod.containers : [];
    if (containers.length === 0) problem("no containers");
    const allContainers = [...containers.map(c => ["container", c]), ...(Array.isArray(pod.initContainers) ? pod.initContainers : []).map(c => ["init container", c])];
    for (const [what, container] of allContainers) {
        if (!isObject(container)) continue;
        const label = `${what} '${container.name}'`;
        checkResources(container.resources, text => problem(`${label}: ${text}`));
        checkSecurity(podSecurity, container.securityContext, text => problem(`${label}: ${text}`));
        const mounts = Array.isArray(container.volumeMounts) ? container.volumeMounts : [];
        if (container.securityContext?.readOnlyRootFilesystem === true && !mounts.some(m => path.posix.normalize(String(m?.mountPath)) === "/tmp"))
            problem(`${label}: the root filesystem is read-only, so mount a volume (an emptyDir with a sizeLimit) at /tmp`);
        for (const mount of mounts)
            if (!volumes.some(v => v?.name === mount?.name)) problem(`${label}: volumeMount '${mount?.name}' has no volume`);
        if (what === "container") checkProbes(container, text => problem(`${label}: ${text}`));
        for (const port of Array.isArray(container.ports) ? container.ports : [])
            if (["silo", "gateway"].includes(port?.name)) siloPorts.set(port.containerPort, port.name);
    }
}

function checkResources(resources, problem) {
    for (const section of ["requests", "limits"]) {
        const values = isObject(resources) ? resources[section] : undefined;
        for (const resource of ["cpu", "memory"])
            if (!isObject(values) || values[resource] === undefined) problem(`resources.${section}.${resource} is missing`);
    }
}

function checkSecurity(pod, container, problem) {
    const c = isObject(container) ? container : {};
    const effective = key => c[key] !== undefined ? c[key] : pod[key];
    if (effective("runAsNonRoot") !== true) problem("securityContext.runAsNonRoot must be true");
    const user = effective("runAsUser"), group = effective("runAsGroup");
    if (user !== NON_ROOT_USER) problem(`securityContext.runAsUser must be ${NON_ROOT_USER} (the image's app user), not ${user ?? "unset"}`);
    if (group !== NON_ROOT_USER) problem(`securityContext.runAsGroup must be ${NON_ROOT_USER}, not ${group ?? "unset"}`);
    if (c.readOnlyRootFilesystem !== true) problem("securityContext.readOnlyRootFilesystem must be true");
    if (c.allowPrivilegeEscalation !== false) problem("securityContext.allowPrivilegeEscalation must be false");
    if (c.privileged === true) problem("securityContext.privileged must not be true");
    const drop = Array.isArray(c.capabilities?.drop) ? c.capabilities.drop : [];
    if (!drop.includes("ALL")) problem("securityContext.capabilities.drop must include ALL");
    if (Array.isArray(c.capabilities?.add) && c.capabilities.add.length > 0) problem(`securityContext.capabilities.add must be empty, not ${JSON.stringify(c.capabilities.add)}`);
    const seccomp = effective("seccompProfile");
    if (!["RuntimeDefault", "Localhost"].includes(seccomp?.type)) problem("securityContext.seccompProfile.type must be RuntimeDefault");
}

function checkProbes(container, problem) {
    const ports = Array.isArray(container.ports) ? container.ports : [];
    for (const probeName of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const probe = container[probeName];
        if (!isObject(probe)) { problem(`${probeName} is missing`); continue; }
        const action = probe.grpc ?? probe.tcpSocket ?? probe.httpGet;
        if (probe.exec === undefined && action === undefined) { problem(`${probeName} has no grpc, tcpSocket, httpGet or exec action`); continue; }
        if (action !== undefined && !ports.some(p => p?.containerPort === action.port || (p?.name !== undefined && p.name === action.port)))
            problem(`${probeName} probes port ${action.port}, which the container does not declare`);
    }
}

// The NetworkPolicy: one selects the app's pods, and the silo/gateway ports are open to the app's own pods only.
if (deployments.length > 0) {
    const selecting = policies.filter(p => selectsApp(p.document.spec?.podSelector) && policyTypes(p.document).includes("Ingress"));
    if (selecting.length === 0) {
        const target = deployments[0];
        report(target.file, target.kind, target.name,
            `no NetworkPolicy with policyTypes Ingress selects the ${APP_LABEL[0]}: ${APP_LABEL[1]} pods (anything in the cluster could reach the silo and gateway ports)`);
    }
    for (const { file, document, kind, name } of selecting) {
        const rules = Array.isArray(document.spec?.ingress) ? document.spec.ingress : [];
        for (const [i, rule] of rules.entries()) {
            const rulePorts = Array.isArray(rule?.ports) && rule.ports.length > 0 ? rule.ports : null; // null: every port
            const opened = [...siloPorts.keys()].filter(port => rulePorts === null || rulePorts.some(p => p?.port === port || p?.port === siloPorts.get(port)));
            if (opened.length === 0) continue;
            const peers = Array.isArray(rule?.from) ? rule.from : [];
            const what = opened.map(p => `${siloPorts.get(p)} port ${p}`).join(", ");
            if (peers.length === 0) report(file, kind, name, `spec.ingress[${i}] opens the ${what} to every source: allow only pods labelled ${APP_LABEL[0]}: ${APP_LABEL[1]}`);
            for (const [j, peer] of peers.entries())
                if (!isObject(peer) || peer.ipBlock !== undefined || peer.namespaceSelector !== undefined || !selectsAppOnly(peer.podSelector))
                    report(file, kind, name, `spec.ingress[${i}].from[${j}] opens the ${what} to more than the pods labelled ${APP_LABEL[0]}: ${APP_LABEL[1]} in this namespace`);
        }
    }
}

function policyTypes(policy) {
    const types = policy.spec?.policyTypes;
    return Array.isArray(types) ? types : ["Ingress"]; // Kubernetes' default when unset
}

/** The selector picks the app's pods (an empty selector picks every pod of the namespace, the app's included). */
function selectsApp(selector) {
    if (!isObject(selector)) return false;
    const labels = selector.matchLabels ?? {};
    const expressions = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
    return Object.entries(labels).every(([k, v]) => k === APP_LABEL[0] ? v === APP_LABEL[1] : false) &&
        expressions.length === 0;
}

/** The selector picks only pods labelled app: onlinealign (not every pod). */
function selectsAppOnly(selector) {
    return isObject(selector) && labelsInclude(selector.matchLabels, APP_LABEL);
}

function labelsInclude(labels, [key, value]) {
    return isObject(labels) && labels[key] === value;
}

function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------------------

// 3. The perimeter.
const notes = checkPerimeter({ resources, kustomization, kustomizationPath, readmePath: path.join(here, "README.md"), readmeLabel: display(path.join(here, "README.md")), release, report });

if (problems.length > 0) {
    for (const line of problems) console.log(line);
    console.log(`${problems.length} problem(s) in ${documentCount} documents under ${display(folder)}`);
    process.exit(1);
}
for (const note of notes) console.log(note);
console.log(`${documentCount} documents valid (${resources.map(r => r.kind).filter((k, i, all) => all.indexOf(k) === i).join(", ")}) under ${display(folder)}`);
