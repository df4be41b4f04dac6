// The perimeter rules of deploy/validate-manifests.mjs (issue 26, "Deployment"): what an attacker inside or next to
// the cluster meets. Each check names the file, kind/name and the problem through `report`.
//
//   secrets   no Secret is applied with the manifests (a placeholder would overwrite the real key on every apply);
//             each Secret the pods use is created by a `kubectl create secret` command in deploy/README.md, with
//             the keys the pods read
//   images    every image is pinned by digest (the placeholder digest until a release sets the real one)
//   access    pods that parse model files hold no Kubernetes token and no role; roles grant get/list/watch on pods
//             and nothing else (no delete); a token is mounted only where Orleans' Kubernetes hosting uses it
//   egress    every pod is selected by an Egress NetworkPolicy; no rule allows every destination or port; no
//             ipBlock reaches the cloud metadata address
//   pod security  the namespace enforces the restricted profile (or baseline with a stated reason), and the pod
//             templates pass it
//   disruption    one PodDisruptionBudget per Deployment, which neither blocks every drain nor lets all pods go
//   tls       the gRPC API and the silo/gateway ports are served with certificates from their Secrets; no
//             plaintext grpc probe against a TLS port
import fs from "node:fs";
import path from "node:path";

export const PLACEHOLDER_DIGEST = "sha256:" + "0".repeat(64);
export const API_TLS_SECRET = "onlinealign-api-tls";
export const CLUSTER_TLS_SECRET = "onlinealign-cluster-tls";
const API_TLS_ENV = ["Api__CertificatePath", "Api__CertificateKeyPath"];
const CLUSTER_TLS_ENV = ["ClusterTls__CertificatePath", "ClusterTls__KeyPath", "ClusterTls__CaPath"];
const ROLE_VERBS = new Set(["get", "list", "watch"]);
// Addresses that hand out cloud credentials to whoever asks from the node's network.
const METADATA_ADDRESSES = ["169.254.169.254", "fd00:ec2::254"];
// Pod Security Standards, restricted profile (Kubernetes 1.33): the volume types it allows.
const RESTRICTED_VOLUMES = new Set(["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"]);
const SAFE_SYSCTLS = new Set(["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"]);

/**
 * @param ctx { resources: [{file, document, kind, name}], kustomization, kustomizationPath, readmePath, readmeLabel,
 *              release (the placeholder digest is an error), report(file, kind, name, problem) }
 * @returns notes: lines printed after "N documents valid" (not problems)
 */
export function checkPerimeter(ctx) {
    const notes = [];
    const pods = podTemplates(ctx);
    checkSecrets(ctx, pods);
    checkImages(ctx, pods, notes);
    checkAccess(ctx, pods);
    checkEgress(ctx, pods);
    checkPodSecurity(ctx, pods);
    checkDisruptionBudgets(ctx, pods);
    checkTls(ctx, pods);
    return notes;
}

/** The pod template of every workload, with its containers (init containers included), labels and replicas. */
function podTemplates(ctx) {
    const result = [];
    for (const r of ctx.resources) {
        if (!isObject(r.document) || !["Deployment", "StatefulSet", "DaemonSet"].includes(r.kind)) continue;
        const spec = r.document.spec?.template?.spec;
        if (!isObject(spec)) continue;
        const containers = [...list(spec.containers), ...list(spec.initContainers)].filter(isObject);
        result.push({
            ...r, spec, containers,
            labels: isObject(r.document.spec?.template?.metadata?.labels) ? r.document.spec.template.metadata.labels : {},
            replicas: typeof r.document.spec?.replicas === "number" ? r.document.spec.replicas : 1,
            problem: text => ctx.report(r.file, r.kind, r.name, text),
        });
    }
    return result;
}

function envOf(container) {
    const env = new Map();
    for (const e of list(container.env)) if (isObject(e) && typeof e.name === "string") env.set(e.name, e);
    return env;
}

function envValue(container, name) {
    const e = envOf(container).get(name);
    return e?.value;
}

function fieldRef(container, name) {
    return envOf(container).get(name)?.valueFrom?.fieldRef?.fieldPath;
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets

const PLACEHOLDER = /<[^>]*>|\b(change[-_ ]?me|replace[-_ ]?me|placeholder|your[-_ ]|example|todo|fixme)|^x{3,}$|^\s*$/i;

function checkSecrets(ctx, pods) {
    for (const r of ctx.resources.filter(r => r.kind === "Secret" && isObject(r.document))) {
        const placeholders = [];
        for (const [key, value] of Object.entries(isObject(r.document.stringData) ? r.document.stringData : {}))
            if (PLACEHOLDER.test(String(value))) placeholders.push(`stringData.${key} ('${String(value).slice(0, 40)}')`);
        for (const [key, value] of Object.entries(isObject(r.document.data) ? r.document.data : {})) {
            const decoded = Buffer.from(String(value), "base64").toString("utf8");
            if (PLACEHOLDER.test(decoded)) placeholders.push(`data.${key} ('${decoded.slice(0, 40)}')`);
        }
        if (placeholders.length > 0)
            ctx.report(r.file, r.kind, r.name, `holds placeholder values (${placeholders.join(", ")}): \`kubectl apply -k\` would overwrite the real Secret with them; remove it from resources and create it with \`kubectl create secret\` (deploy/README.md)`);
        else
            ctx.report(r.file, r.kind, r.name, "a Secret applied with the manifests replaces the live one on every `kubectl apply -k` (and puts the key in git): create it with `kubectl create secret` instead (deploy/README.md)");
    }

    for (const [i, generator] of list(ctx.kustomization.secretGenerator).entries()) {
        const where = `secretGenerator[${i}] (${generator?.name})`;
        if (["replace", "merge"].includes(generator?.behavior))
            ctx.report(ctx.kustomizationPath, "Kustomization", "-", `${where}: behavior '${generator.behavior}' changes the live Secret on every apply; use create (the default)`);
        if (generator?.options?.disableNameSuffixHash === true)
            ctx.report(ctx.kustomizationPath, "Kustomization", "-", `${where}: disableNameSuffixHash makes every apply overwrite the live Secret of that name`);
        for (const literal of list(generator?.literals))
            if (PLACEHOLDER.test(String(literal).split("=").slice(1).join("=")))
                ctx.report(ctx.kustomizationPath, "Kustomization", "-", `${where}: literal '${String(literal).split("=")[0]}' is a placeholder`);
    }

    // Every Secret the pods read and the manifests do not define must be made by a command in deploy/README.md,
    // with the keys the pods read (a missing key fails the pod at start, far from the cause).
    const defined = new Set(ctx.resources.filter(r => r.kind === "Secret").map(r => r.name));
    const generated = new Set(list(ctx.kustomization.secretGenerator).map(g => g?.name));
    const documented = documentedSecrets(ctx.readmePath);
    for (const pod of pods) {
        for (const [secret, keys] of secretsUsed(pod)) {
            if (defined.has(secret) || generated.has(secret)) continue;
            const doc = documented.get(secret);
            if (doc === undefined) {
                pod.problem(`uses Secret '${secret}', which no manifest defines and no \`kubectl create secret ... ${secret}\` command in ${ctx.readmeLabel} creates`);
                continue;
            }
            for (const key of keys)
                if (!doc.has(key)) pod.problem(`reads key '${key}' of Secret '${secret}', which the \`kubectl create secret\` command in ${ctx.readmeLabel} does not create`);
        }
    }
}

/** Secret name -> keys the pod reads (env secretKeyRef; files under a secret volume named by env paths). */
function secretsUsed(pod) {
    const used = new Map();
    const add = (name, key) => { if (!used.has(name)) used.set(name, new Set()); if (key) used.get(name).add(key); };
    const volumes = new Map(list(pod.spec.volumes).filter(v => isObject(v?.secret)).map(v => [v.name, v.secret.secretName]));
    for (const v of volumes.values()) add(v);
    for (const c of pod.containers) {
        for (const e of list(c.env)) {
            const ref = e?.valueFrom?.secretKeyRef;
            if (isObject(ref)) add(ref.name, ref.key);
            // A path under a mounted secret volume names one of its keys.
            if (typeof e?.value === "string" && e.value.startsWith("/")) {
                const mount = mountUnder(c, e.value);
                if (mount && volumes.has(mount.name)) add(volumes.get(mount.name), path.posix.relative(mount.mountPath, e.value));
            }
        }
        for (const source of list(c.envFrom)) if (isObject(source?.secretRef)) add(source.secretRef.name);
    }
    return used;
}

/** `kubectl create secret (generic|tls) NAME ...` commands in the README: name -> keys they create. */
function documentedSecrets(readmePath) {
    const result = new Map();
    if (!fs.existsSync(readmePath)) return result;
    const text = fs.readFileSync(readmePath, "utf8").replace(/\\\r?\n/g, " "); // join continued lines
    for (const line of text.split("\n")) {
        const match = /kubectl\s+(?:(?:-n|--namespace)[ =]\S+\s+)?create\s+secret\s+(generic|tls)\s+([a-z0-9.-]+)(.*)/.exec(line);
        if (!match) continue;
        const [, type, name, rest] = match;
        const keys = new Set(type === "tls" ? ["tls.crt", "tls.key"] : []);
        for (const option of rest.matchAll(/--from-(literal|file)=([^\s=]+)(=?)/g))
            keys.add(option[1] === "file" && option[3] === "" ? path.basename(option[2]) : option[2]);
        result.set(name, keys);
    }
    return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Images

function splitImage(image) {
    const at = image.indexOf("@");
    const withoutDigest = at < 0 ? image : image.slice(0, at);
    const digest = at < 0 ? undefined : image.slice(at + 1);
    const lastPart = withoutDigest.split("/").pop();
    const colon = lastPart.lastIndexOf(":");
    const name = colon < 0 ? withoutDigest : withoutDigest.slice(0, withoutDigest.length - lastPart.length + colon);
    const tag = colon < 0 ? undefined : lastPart.slice(colon + 1);
    return { name, tag, digest };
}

function checkImages(ctx, pods, notes) {
    const k = ctx.kustomization;
    const file = ctx.kustomizationPath;
    const mapped = new Map(); // image name -> its kustomization entry
    for (const [i, image] of list(k.images).entries()) {
        if (!isObject(image)) { ctx.report(file, "Kustomization", "-", `images[${i}]: not a mapping`); continue; }
        for (const key of Object.keys(image))
            if (!["name", "newName", "newTag", "digest"].includes(key)) ctx.report(file, "Kustomization", "-", `images[${i}].${key}: unknown field`);
        const where = `images[${i}] (${image.name})`;
        if (image.newTag !== undefined)
            ctx.report(file, "Kustomization", "-", `${where}: newTag '${image.newTag}' names a tag, which can be moved to other bytes: pin the digest (kustomize edit set image ${image.name}=<registry>/<name>@sha256:<digest>)`);
        if (typeof image.digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(image.digest))
            ctx.report(file, "Kustomization", "-", `${where}: digest must be sha256:<64 hex digits>, not '${image.digest ?? "unset"}'`);
        else if (image.digest === PLACEHOLDER_DIGEST && ctx.release)
            ctx.report(file, "Kustomization", "-", `${where}: still the placeholder digest: set the release's (kustomize edit set image ${image.name}=<registry>/<name>@sha256:<digest>, deploy/README.md)`);
        if (typeof image.newName === "string" && /[:@]/.test(image.newName.split("/").pop()))
            ctx.report(file, "Kustomization", "-", `${where}: newName '${image.newName}' must be a name only (the digest goes in digest)`);
        mapped.set(image.name, image);
    }

    let placeholder = false;
    for (const pod of pods) {
        for (const c of pod.containers) {
            const label = `container '${c.name}'`;
            if (typeof c.image !== "string" || c.image === "") { pod.problem(`${label}: image is missing`); continue; }
            const { name, tag, digest } = splitImage(c.image);
            if (tag === "latest") pod.problem(`${label}: image '${c.image}' uses the tag 'latest': pin it by digest (name@sha256:...)`);
            if (digest === undefined) {
                if (tag !== "latest") pod.problem(`${label}: image '${c.image}' is not pinned by digest: use name@sha256:<digest> (a tag can be moved to other bytes)`);
                continue;
            }
            if (!/^sha256:[0-9a-f]{64}$/.test(digest)) { pod.problem(`${label}: image '${c.image}': the digest must be sha256:<64 hex digits>`); continue; }
            const entry = mapped.get(name);
            const effective = isObject(entry) && typeof entry.digest === "string" ? entry.digest : digest;
            if (effective === PLACEHOLDER_DIGEST) {
                placeholder = true;
                if (ctx.release && !isObject(entry))
                    pod.problem(`${label}: image '${c.image}' is the placeholder digest and kustomization.yaml's images: does not map '${name}'`);
            }
        }
    }
    if (placeholder && !ctx.release)
        notes.push("note: the image is the placeholder digest; before applying, set the release's with `kustomize edit set image` (deploy/README.md) and check with --release");
}

// ---------------------------------------------------------------------------------------------------------------
// Access to the Kubernetes API

/** Pods that read model files: GPU silos (role gpu or all, or a GPU requested). */
function parsesModelFiles(pod) {
    return pod.containers.some(c => {
        const args = list(c.args).map(String);
        const role = args[args.indexOf("--role") + 1];
        const gpu = isObject(c.resources?.limits) && c.resources.limits["nvidia.com/gpu"] !== undefined;
        return (args.includes("--role") && ["gpu", "all"].includes(role)) || gpu;
    });
}

function usesKubernetesHosting(pod) {
    return pod.containers.some(c => String(envValue(c, "Silo__Kubernetes")).toLowerCase() === "true");
}

function isSilo(container) {
    return list(container.ports).some(p => ["silo", "gateway"].includes(p?.name));
}

function checkAccess(ctx, pods) {
    for (const r of ctx.resources.filter(r => ["ClusterRole", "ClusterRoleBinding"].includes(r.kind)))
        ctx.report(r.file, r.kind, r.name, "cluster-wide access: the silos need only their own namespace's pods (a Role and RoleBinding)");

    const roles = new Map(ctx.resources.filter(r => r.kind === "Role" && isObject(r.document)).map(r => [r.name, r]));
    for (const r of roles.values()) {
        for (const [i, rule] of list(r.document.rules).entries()) {
            const verbs = list(rule?.verbs).map(String);
            const extra = verbs.filter(v => !ROLE_VERBS.has(v));
            if (extra.length > 0)
                ctx.report(r.file, r.kind, r.name, `rules[${i}] grants ${extra.join(", ")}: the silos need only get, list and watch (Orleans' Kubernetes hosting watches pods; deleting them is off)`);
            const resources = list(rule?.resources).map(String);
            const others = resources.filter(x => x !== "pods");
            if (others.length > 0) ctx.report(r.file, r.kind, r.name, `rules[${i}] covers ${others.join(", ")}: the silos need only pods`);
            if (list(rule?.apiGroups).some(g => g !== "")) ctx.report(r.file, r.kind, r.name, `rules[${i}] covers API groups beyond the core group ("")`);
        }
    }

    // Service account -> the Roles bound to it.
    const bound = new Map();
    for (const b of ctx.resources.filter(r => r.kind === "RoleBinding" && isObject(r.document)))
        for (const s of list(b.document.subjects))
            if (s?.kind === "ServiceAccount") {
                if (!bound.has(s.name)) bound.set(s.name, []);
                bound.get(s.name).push(b.document.roleRef?.name);
            }
    const accounts = new Map(ctx.resources.filter(r => r.kind === "ServiceAccount").map(r => [r.name, r.document]));

    const hosting = pods.filter(usesKubernetesHosting);
    for (const pod of pods) {
        const account = pod.spec.serviceAccountName ?? "default";
        const accountToken = accounts.get(account)?.automountServiceAccountToken;
        const token = pod.spec.automountServiceAccountToken ?? accountToken ?? true;
        const roleNames = bound.get(account) ?? [];
        if (parsesModelFiles(pod)) {
            if (token) pod.problem(`parses model files (hostile input), so it must hold no Kubernetes token: set automountServiceAccountToken: false`);
            if (roleNames.length > 0) pod.problem(`parses model files, yet its service account '${account}' is bound to Role ${roleNames.join(", ")}: give it an account bound to nothing`);
            if (usesKubernetesHosting(pod)) pod.problem("parses model files, so it cannot use Orleans' Kubernetes hosting (Silo__Kubernetes=true needs a token): set the silo's name, address and ids from the pod instead (gpu.yaml)");
        }
        if (usesKubernetesHosting(pod)) {
            if (!token) pod.problem("Silo__Kubernetes=true (Orleans' Kubernetes hosting) needs the service-account token: automountServiceAccountToken: true");
            const grants = roleNames.map(n => roles.get(n)).filter(Boolean).flatMap(r => list(r.document.rules))
                .filter(rule => list(rule?.resources).includes("pods")).flatMap(rule => list(rule.verbs));
            const missing = [...ROLE_VERBS].filter(v => !grants.includes(v));
            if (missing.length > 0) pod.problem(`Orleans' Kubernetes hosting needs ${missing.join(", ")} on pods, which no Role bound to '${account}' grants`);
            for (const c of pod.containers.filter(isSilo))
                for (const [variable, label] of [["ORLEANS_SERVICE_ID", "orleans/serviceId"], ["ORLEANS_CLUSTER_ID", "orleans/clusterId"]])
                    if (fieldRef(c, variable) !== `metadata.labels['${label}']`)
                        pod.problem(`container '${c.name}': ${variable} must come from the pod's label ${label} (fieldRef), or Orleans patches the pod's labels, which the Role does not grant`);
        } else if (token && !parsesModelFiles(pod)) {
            pod.problem(`mounts the service-account token of '${account}' without using the Kubernetes API: set automountServiceAccountToken: false`);
        }
    }

    // Silos without the hosting, in a cluster whose control silos use it: the hosting declares dead every silo
    // that has no pod of its name among the pods with its orleans/* labels.
    if (hosting.length > 0) {
        const wanted = Object.fromEntries(["orleans/serviceId", "orleans/clusterId"].map(l => [l, hosting[0].labels[l]]));
        for (const pod of pods.filter(p => !usesKubernetesHosting(p))) {
            for (const c of pod.containers.filter(isSilo)) {
                const label = `container '${c.name}'`;
                if (fieldRef(c, "Orleans__Name") !== "metadata.name")
                    pod.problem(`${label}: set Orleans__Name from the pod's name (fieldRef metadata.name): the control silos' Kubernetes hosting declares dead any silo whose name is no pod's`);
                if (fieldRef(c, "Silo__ListenAddress") !== "status.podIP")
                    pod.problem(`${label}: set Silo__ListenAddress from the pod's IP (fieldRef status.podIP)`);
                for (const [variable, l] of [["Silo__ServiceId", "orleans/serviceId"], ["Silo__ClusterId", "orleans/clusterId"]])
                    if (fieldRef(c, variable) !== `metadata.labels['${l}']`) pod.problem(`${label}: set ${variable} from the pod's label ${l} (fieldRef)`);
            }
            for (const [l, value] of Object.entries(wanted))
                if (pod.labels[l] !== value) pod.problem(`the pod template's label ${l} must be '${value}', as on the pods that use Orleans' Kubernetes hosting (which match silos to pods by it)`);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Egress

function checkEgress(ctx, pods) {
    const policies = ctx.resources.filter(r => r.kind === "NetworkPolicy" && isObject(r.document));
    const egressPolicies = policies.filter(p => policyTypes(p.document).includes("Egress"));
    for (const pod of pods) {
        const selecting = egressPolicies.filter(p => selects(p.document.spec?.podSelector, pod.labels));
        if (selecting.length === 0) { pod.problem("no NetworkPolicy with policyTypes Egress selects its pods: they may connect anywhere (the cloud metadata address included)"); continue; }
        const rules = selecting.flatMap(p => list(p.document.spec?.egress));
        if (!rules.some(rule => list(rule?.ports).some(port => port?.port === 53 && (port.protocol ?? "TCP") === "UDP")))
            pod.problem("its Egress NetworkPolicies allow no DNS (UDP port 53): the silos could not resolve the storage account");
    }
    for (const p of egressPolicies) {
        const problem = text => ctx.report(p.file, p.kind, p.name, text);
        for (const [i, rule] of list(p.document.spec?.egress).entries()) {
            const to = list(rule?.to);
            if (to.length === 0) problem(`spec.egress[${i}] has no 'to': it allows every destination`);
            if (list(rule?.ports).length === 0) problem(`spec.egress[${i}] has no 'ports': it allows every port`);
            for (const [j, peer] of to.entries()) {
                const where = `spec.egress[${i}].to[${j}]`;
                if (isObject(peer?.namespaceSelector) && isEmptySelector(peer.namespaceSelector) && peer.podSelector === undefined)
                    problem(`${where}: an empty namespaceSelector allows every namespace`);
                if (!isObject(peer?.ipBlock)) continue;
                const block = parseCidr(peer.ipBlock.cidr);
                if (block === null) { problem(`${where}.ipBlock.cidr '${peer.ipBlock.cidr}' is not a CIDR`); continue; }
                const excepts = list(peer.ipBlock.except).map(parseCidr).filter(Boolean);
                for (const address of METADATA_ADDRESSES) {
                    const a = parseAddress(address);
                    if (a.family !== block.family || !contains(block, a)) continue;
                    if (!excepts.some(e => e.family === a.family && contains(e, a)))
                        problem(`${where}.ipBlock ${peer.ipBlock.cidr} reaches the cloud metadata address ${address}: add ${address}/${a.family === 4 ? 32 : 128} to its except list`);
                }
            }
        }
    }
}

function policyTypes(policy) {
    const types = policy.spec?.policyTypes;
    if (Array.isArray(types)) return types;
    return policy.spec?.egress !== undefined ? ["Ingress", "Egress"] : ["Ingress"]; // Kubernetes' defaults
}

function parseAddress(text) {
    if (text.includes(":")) {
        const [head, tail] = text.split("::");
        const parts = s => (s ? s.split(":") : []).map(h => BigInt(parseInt(h, 16)));
        const h = parts(head), t = tail === undefined ? [] : parts(tail);
        const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0n), ...t];
        if (groups.length !== 8) return null;
        return { family: 6, value: groups.reduce((v, g) => (v << 16n) | g, 0n), bits: 128 };
    }
    const octets = text.split(".").map(Number);
    if (octets.length !== 4 || octets.some(o => !Number.isInteger(o) || o < 0 || o > 255)) return null;
    return { family: 4, value: octets.reduce((v, o) => (v << 8n) | BigInt(o), 0n), bits: 32 };
}

function parseCidr(text) {
    if (typeof text !== "string" || !text.includes("/")) return null;
    const [address, prefix] = text.split("/");
    const a = parseAddress(address);
    const length = Number(prefix);
    if (a === null || !Number.isInteger(length) || length < 0 || length > a.bits) return null;
    return { ...a, prefix: length };
}

function contains(block, address) {
    const shift = BigInt(block.bits - block.prefix);
    return (block.value >> shift) === (address.value >> shift) && (address.prefix === undefined || address.prefix >= block.prefix);
}

// ---------------------------------------------------------------------------------------------------------------
// Pod Security Standards

function checkPodSecurity(ctx, pods) {
    const namespaces = ctx.resources.filter(r => r.kind === "Namespace" && isObject(r.document));
    const target = ctx.kustomization.namespace;
    const namespace = namespaces.find(n => n.name === target) ?? (target === undefined ? namespaces[0] : undefined);
    if (namespace === undefined) {
        ctx.report(ctx.kustomizationPath, "Kustomization", "-", `the namespace ${target ?? "(none)"} is not among the resources: it must be, with its Pod Security labels`);
        return;
    }
    const labels = isObject(namespace.document.metadata?.labels) ? namespace.document.metadata.labels : {};
    const annotations = isObject(namespace.document.metadata?.annotations) ? namespace.document.metadata.annotations : {};
    const level = labels["pod-security.kubernetes.io/enforce"];
    const problem = text => ctx.report(namespace.file, namespace.kind, namespace.name, text);
    if (level === undefined) problem("no pod-security.kubernetes.io/enforce label: the API server admits privileged pods here (set it to restricted)");
    else if (level === "privileged") problem("pod-security.kubernetes.io/enforce is privileged: set it to restricted (or baseline with a reason)");
    else if (level === "baseline" && !annotations["onlinealign/pod-security-reason"])
        problem("pod-security.kubernetes.io/enforce is baseline: say why the pods cannot run under restricted in the annotation onlinealign/pod-security-reason, or set restricted");
    else if (!["restricted", "baseline"].includes(level)) problem(`pod-security.kubernetes.io/enforce '${level}' is not a Pod Security level`);
    // The pods are held to restricted unless the namespace says why they cannot be (baseline), whatever its label.
    if (level !== "baseline") for (const pod of pods) checkRestricted(pod);
}

/** What the restricted profile refuses that the project's own security rules (validate-manifests.mjs) do not already. */
function checkRestricted(pod) {
    const s = pod.spec;
    const problem = text => pod.problem(`Pod Security restricted: ${text}`);
    for (const v of list(s.volumes)) {
        const type = Object.keys(v ?? {}).find(k => k !== "name");
        if (type !== undefined && !RESTRICTED_VOLUMES.has(type)) problem(`volume '${v.name}' is of type ${type}`);
    }
    const podContext = isObject(s.securityContext) ? s.securityContext : {};
    if (podContext.runAsUser === 0) problem("securityContext.runAsUser is 0 (root)");
    for (const sysctl of list(podContext.sysctls)) if (!SAFE_SYSCTLS.has(sysctl?.name)) problem(`sysctl ${sysctl?.name} is not a safe one`);
    if (podContext.windowsOptions?.hostProcess === true) problem("windowsOptions.hostProcess");
    checkContext(podContext, "pod securityContext", problem);
    for (const c of pod.containers) {
        const context = isObject(c.securityContext) ? c.securityContext : {};
        const label = `container '${c.name}'`;
        for (const port of list(c.ports)) if (port?.hostPort) problem(`${label}: hostPort ${port.hostPort}`);
        if (context.runAsUser === 0) problem(`${label}: runAsUser is 0 (root)`);
        if (context.procMount !== undefined && context.procMount !== "Default") problem(`${label}: procMount ${context.procMount}`);
        const added = list(context.capabilities?.add).filter(a => a !== "NET_BIND_SERVICE");
        if (added.length > 0) problem(`${label}: adds capabilities ${added.join(", ")}`);
        if (context.windowsOptions?.hostProcess === true) problem(`${label}: windowsOptions.hostProcess`);
        checkContext(context, label, problem);
    }
}

function checkContext(context, label, problem) {
    if (context.seccompProfile?.type === "Unconfined") problem(`${label}: seccompProfile Unconfined`);
    if (context.appArmorProfile?.type === "Unconfined") problem(`${label}: appArmorProfile Unconfined`);
    const seLinux = context.seLinuxOptions?.type;
    if (seLinux !== undefined && !["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"].includes(seLinux))
        problem(`${label}: seLinuxOptions.type ${seLinux}`);
    if (context.seLinuxOptions?.user !== undefined || context.seLinuxOptions?.role !== undefined) problem(`${label}: seLinuxOptions user or role`);
}

// ---------------------------------------------------------------------------------------------------------------
// Disruption budgets

function checkDisruptionBudgets(ctx, pods) {
    const budgets = ctx.resources.filter(r => r.kind === "PodDisruptionBudget" && isObject(r.document));
    for (const b of budgets) {
        if (!pods.some(pod => selects(b.document.spec?.selector, pod.labels)))
            ctx.report(b.file, b.kind, b.name, "its selector matches no pod template of these manifests");
    }
    for (const pod of pods.filter(p => p.kind !== "DaemonSet")) {
        const selecting = budgets.filter(b => selects(b.document.spec?.selector, pod.labels));
        if (selecting.length === 0) { pod.problem("no PodDisruptionBudget selects its pods: a node drain may evict them all at once"); continue; }
        if (selecting.length > 1) { pod.problem(`several PodDisruptionBudgets select its pods (${selecting.map(b => b.name).join(", ")}): Kubernetes refuses to evict them at all`); continue; }
        const [b] = selecting;
        const { maxUnavailable, minAvailable } = b.document.spec ?? {};
        const count = value => typeof value === "number" ? value
            : typeof value === "string" && /^\d+%$/.test(value) ? Math.floor(pod.replicas * parseInt(value, 10) / 100) : undefined;
        const problem = text => ctx.report(b.file, b.kind, b.name, `for ${pod.kind}/${pod.name} (${pod.replicas} replica(s)): ${text}`);
        const unavailable = maxUnavailable !== undefined ? count(maxUnavailable) : minAvailable !== undefined ? pod.replicas - count(minAvailable) : undefined;
        if (unavailable === undefined) problem("set maxUnavailable or minAvailable");
        else if (unavailable <= 0) problem("it allows no eviction at all, so every node drain and cluster upgrade hangs on these pods");
        else if (pod.replicas > 1 && unavailable >= pod.replicas) problem("it lets a drain evict every replica at once");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// TLS

function isLoopback(address) {
    return address === undefined || address === "localhost" || /^127\./.test(address) || address === "::1";
}

/** The API is on unless Api__Port is 0; the gpu role file turns it off, the others on. */
function apiPort(container) {
    const configured = envValue(container, "Api__Port");
    if (configured !== undefined) return Number(configured);
    const args = list(container.args).map(String);
    return args[args.indexOf("--role") + 1] === "gpu" ? 0 : 5080;
}

function mountUnder(container, file) {
    return list(container.volumeMounts).find(m => typeof m?.mountPath === "string" &&
        !path.posix.relative(m.mountPath, file).startsWith("..") && path.posix.relative(m.mountPath, file) !== "");
}

/** Each variable names a file in a read-only volume of the Secret. */
function checkFromSecret(pod, container, variables, secretName, why) {
    const volumes = new Map(list(pod.spec.volumes).map(v => [v?.name, v]));
    const writable = new Set();
    for (const variable of variables) {
        const value = envValue(container, variable);
        const problem = text => pod.problem(`container '${container.name}': ${text} (${why})`);
        if (typeof value !== "string" || !value.startsWith("/")) { problem(`${variable} is not set to a file of the Secret ${secretName}`); continue; }
        const mount = mountUnder(container, value);
        const secret = volumes.get(mount?.name)?.secret?.secretName;
        if (secret !== secretName) problem(`${variable} (${value}) is not in a volume of the Secret ${secretName}`);
        else if (mount.readOnly !== true && !writable.has(mount.name)) { writable.add(mount.name); problem(`the volume mount '${mount.name}' of the Secret ${secretName} must be readOnly`); }
    }
}

function checkTls(ctx, pods) {
    const tlsPorts = []; // { pod, port }
    for (const pod of pods) {
        for (const c of pod.containers) {
            const label = `container '${c.name}'`;
            const port = apiPort(c);
            if (port > 0 && !isLoopback(envValue(c, "Api__ListenAddress"))) {
                checkFromSecret(pod, c, API_TLS_ENV, API_TLS_SECRET, "the gRPC API listens beyond loopback: TLS");
                tlsPorts.push({ pod, port });
                for (const probeName of ["startupProbe", "readinessProbe", "livenessProbe"]) {
                    const grpc = c[probeName]?.grpc;
                    if (isObject(grpc) && (grpc.port === port || list(c.ports).some(p => p?.name === grpc.port && p.containerPort === port)))
                        pod.problem(`${label}: ${probeName} is a grpc probe on the TLS API port ${port}: Kubernetes' grpc probes speak plaintext and would always fail (use tcpSocket)`);
                }
            }
            if (isSilo(c))
                checkFromSecret(pod, c, CLUSTER_TLS_ENV, CLUSTER_TLS_SECRET, "the silo and gateway ports: mutual TLS");
        }
    }
    // A Service that announces cleartext HTTP/2 in front of a TLS port misleads proxies and meshes.
    for (const s of ctx.resources.filter(r => r.kind === "Service" && isObject(r.document))) {
        for (const [i, port] of list(s.document.spec?.ports).entries()) {
            if (port?.appProtocol !== "kubernetes.io/h2c") continue;
            if (tlsPorts.some(t => selects({ matchLabels: s.document.spec?.selector }, t.pod.labels) && t.port === (port.targetPort ?? port.port)))
                ctx.report(s.file, s.kind, s.name, `spec.ports[${i}]: appProtocol kubernetes.io/h2c (cleartext) in front of the TLS API: use https`);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------

/** Does a LabelSelector (matchLabels and matchExpressions) pick a pod with these labels? Empty picks all. */
export function selects(selector, labels) {
    if (!isObject(selector)) return false;
    for (const [k, v] of Object.entries(isObject(selector.matchLabels) ? selector.matchLabels : {})) if (labels[k] !== v) return false;
    for (const e of list(selector.matchExpressions)) {
        const has = Object.hasOwn(labels, e?.key);
        const values = list(e?.values);
        if (e?.operator === "In" && !(has && values.includes(labels[e.key]))) return false;
        if (e?.operator === "NotIn" && has && values.includes(labels[e.key])) return false;
        if (e?.operator === "Exists" && !has) return false;
        if (e?.operator === "DoesNotExist" && has) return false;
    }
    return true;
}

function isEmptySelector(selector) {
    return Object.keys(selector.matchLabels ?? {}).length === 0 && list(selector.matchExpressions).length === 0;
}

function list(value) {
    return Array.isArray(value) ? value : [];
}

function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}
