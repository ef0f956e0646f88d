package deploy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/eddy-streams/eddy/pipeline"
)

const (
	k8sBase = "deploy/k8s/base"
	k8sKEDA = "deploy/k8s/overlays/keda"
	// partitionsAnnotation records, on the HPA and the ScaledObject, the
	// source topic's partition count that bounds their replica counts.
	partitionsAnnotation = "eddy-streams.io/source-partitions"
	// secretExample is the example Secret, deliberately not a resource.
	secretExample = "secret.example.yaml"
)

// base is deploy/k8s/base, every file decoded strictly into its API type.
type base struct {
	kust     ktypes.Kustomization
	dep      appsv1.Deployment
	hpa      autoscalingv2.HorizontalPodAutoscaler
	hpaFile  []byte
	pdb      policyv1.PodDisruptionBudget
	svc      corev1.Service
	secret   corev1.Secret // secret.example.yaml
	pipeFile []byte        // the pipeline the ConfigMap generator ships
	pipe     *pipeline.Pipeline
}

// typeMeta is a manifest's apiVersion and kind.
type typeMeta struct{ APIVersion, Kind string }

// peekType decodes a manifest loosely (still rejecting duplicate keys) to
// learn its apiVersion and kind.
func peekType(t *testing.T, name string, data []byte) typeMeta {
	t.Helper()
	var loose map[string]any
	strictDecode(t, name, data, &loose)
	v, _ := loose["apiVersion"].(string)
	k, _ := loose["kind"].(string)
	return typeMeta{APIVersion: v, Kind: k}
}

func loadBase(t *testing.T) *base {
	t.Helper()
	b := &base{}
	strictDecode(t, "kustomization.yaml", readFile(t, path.Join(k8sBase, "kustomization.yaml")), &b.kust)
	seen := map[string]bool{}
	for _, res := range b.kust.Resources {
		file := path.Join(k8sBase, res)
		data := readFile(t, file)
		tm := peekType(t, file, data)
		if tm.Kind == "Secret" {
			t.Fatalf("%s: a Secret among the resources: apply would install its credentials; the user creates the Secret (see %s)", file, secretExample)
		}
		want, ok := map[string]string{
			"Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
			"PodDisruptionBudget": "policy/v1", "Service": "v1",
		}[tm.Kind]
		if !ok {
			t.Fatalf("%s: unexpected kind %q", file, tm.Kind)
		}
		if tm.APIVersion != want {
			t.Errorf("%s: %s is %s; want %s", file, tm.Kind, tm.APIVersion, want)
		}
		if seen[tm.Kind] {
			t.Fatalf("%s: a second %s", file, tm.Kind)
		}
		seen[tm.Kind] = true
		switch tm.Kind {
		case "Deployment":
			strictDecode(t, file, data, &b.dep)
		case "HorizontalPodAutoscaler":
			strictDecode(t, file, data, &b.hpa)
			b.hpaFile = data
		case "PodDisruptionBudget":
			strictDecode(t, file, data, &b.pdb)
		case "Service":
			strictDecode(t, file, data, &b.svc)
		}
	}
	for _, kind := range []string{"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"} {
		if !seen[kind] {
			t.Fatalf("the kustomization lists no %s", kind)
		}
	}
	strictDecode(t, secretExample, readFile(t, path.Join(k8sBase, secretExample)), &b.secret)

	if len(b.kust.ConfigMapGenerator) != 1 || len(b.kust.ConfigMapGenerator[0].FileSources) != 1 {
		t.Fatalf("want one configMapGenerator with one file (the pipeline), have %+v", b.kust.ConfigMapGenerator)
	}
	key, file := generatorFile(b.kust.ConfigMapGenerator[0].FileSources[0])
	if key != path.Base(PipelinePath) {
		t.Errorf("the ConfigMap's key is %q; the worker reads %s", key, PipelinePath)
	}
	b.pipeFile = readFile(t, path.Join(k8sBase, file))
	b.pipe = parsePipeline(t, file, b.pipeFile, podEnv(b.worker(t)))
	return b
}

// generatorFile splits a generator file source "[key=]path".
func generatorFile(src string) (key, file string) {
	if k, f, ok := strings.Cut(src, "="); ok {
		return k, f
	}
	return path.Base(src), src
}

func (b *base) worker(t *testing.T) corev1.Container {
	t.Helper()
	cs := b.dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers; want 1", len(cs))
	}
	return cs[0]
}

// podEnv is the environment a container gets, with placeholders for
// values Kubernetes fills in (secret keys, pod fields).
func podEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret-" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "field-" + e.ValueFrom.FieldRef.FieldPath
		default:
			env[e.Name] = "from-elsewhere"
		}
	}
	return env
}

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// containerPort resolves a probe's or a Service's port (a number or a
// container port's name) to a number; 0 if a name matches nothing.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func matches(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(set))
}

// documentedPartitions reads the partition count from a manifest's
// annotation and checks that the comment at the top of its file says the same.
func documentedPartitions(t *testing.T, file string, data []byte, ann map[string]string) int {
	t.Helper()
	n, err := strconv.Atoi(ann[partitionsAnnotation])
	if err != nil || n < 1 {
		t.Fatalf("%s: annotation %s=%q; want the source topic's partition count", file, partitionsAnnotation, ann[partitionsAnnotation])
	}
	var head strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		head.WriteString(line + "\n")
	}
	m := regexp.MustCompile(`has (\d+)\s+(?:#\s*)?partitions`).FindStringSubmatch(head.String())
	if m == nil {
		t.Fatalf("%s: the comment at the top does not say how many partitions the topic has", file)
	}
	if m[1] != strconv.Itoa(n) {
		t.Errorf("%s: the comment says %s partitions, the annotation %d", file, m[1], n)
	}
	return n
}

func TestK8sKustomizationListsEveryManifest(t *testing.T) {
	b := loadBase(t)
	listed := map[string]bool{"kustomization.yaml": true}
	for _, r := range b.kust.Resources {
		if _, err := os.Stat(filepath.Join(repoRoot(t), k8sBase, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
		listed[r] = true
	}
	for _, g := range b.kust.ConfigMapGenerator {
		for _, src := range g.FileSources {
			_, f := generatorFile(src)
			listed[f] = true
		}
	}
	if listed[secretExample] {
		t.Errorf("%s is a resource: its placeholder credentials would be applied", secretExample)
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(t), k8sBase, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := filepath.Base(f); !listed[name] && name != secretExample {
			t.Errorf("%s is in %s but not in its kustomization", name, k8sBase)
		}
	}
	var images []string
	for _, im := range b.kust.Images {
		images = append(images, im.Name)
	}
	if img := b.worker(t).Image; !containsString(images, img) {
		t.Errorf("the container's image %q is not set by the kustomization's images %v", img, images)
	}
}

func TestK8sDeployment(t *testing.T) {
	b := loadBase(t)
	c := b.worker(t)
	tmpl := b.dep.Spec.Template

	t.Run("selectors", func(t *testing.T) {
		if !matches(t, b.dep.Spec.Selector, tmpl.Labels) {
			t.Errorf("the Deployment's selector %v does not match its pod labels %v", b.dep.Spec.Selector, tmpl.Labels)
		}
		if !matches(t, b.pdb.Spec.Selector, tmpl.Labels) {
			t.Errorf("the PodDisruptionBudget's selector %v does not match the pods %v", b.pdb.Spec.Selector, tmpl.Labels)
		}
		if len(b.svc.Spec.Selector) == 0 || !labels.SelectorFromSet(b.svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
			t.Errorf("the Service's selector %v does not match the pods %v", b.svc.Spec.Selector, tmpl.Labels)
		}
		ref := b.hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != b.dep.Name {
			t.Errorf("the HPA scales %+v; want the Deployment %s", ref, b.dep.Name)
		}
	})
	t.Run("command and pipeline mount", func(t *testing.T) {
		if want := []string{"run", "-c", PipelinePath}; !equalStrings(c.Args, want) || len(c.Command) > 0 {
			t.Errorf("command %v args %v; want the image's entry point with args %v", c.Command, c.Args, want)
		}
		var mounted bool
		for _, m := range c.VolumeMounts {
			if m.MountPath != path.Dir(PipelinePath) {
				continue
			}
			if !m.ReadOnly {
				t.Errorf("%s is mounted read-write", m.MountPath)
			}
			for _, v := range tmpl.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == b.kust.ConfigMapGenerator[0].Name {
					mounted = true
				}
			}
		}
		if !mounted {
			t.Errorf("%s is not mounted from the ConfigMap %s", path.Dir(PipelinePath), b.kust.ConfigMapGenerator[0].Name)
		}
	})
	t.Run("probes", func(t *testing.T) {
		var http bool
		for _, p := range c.Ports {
			http = http || p.ContainerPort == HTTPPort
		}
		if !http {
			t.Errorf("the container declares no port %d", HTTPPort)
		}
		for _, tc := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"readinessProbe", c.ReadinessProbe, ReadyzPath},
			{"livenessProbe", c.LivenessProbe, HealthzPath},
		} {
			if tc.probe == nil || tc.probe.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe", tc.name)
				continue
			}
			if got := tc.probe.HTTPGet.Path; got != tc.path {
				t.Errorf("%s path %s; the worker serves %s", tc.name, got, tc.path)
			}
			if got := containerPort(c, tc.probe.HTTPGet.Port); got != HTTPPort {
				t.Errorf("%s port %v is %d; the worker listens on %d", tc.name, tc.probe.HTTPGet.Port.String(), got, HTTPPort)
			}
		}
	})
	t.Run("environment", func(t *testing.T) {
		if e, ok := envVar(c, InstanceIDEnv); !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
			t.Errorf("%s = %+v; want the pod name (fieldRef metadata.name)", InstanceIDEnv, e)
		}
		if e, _ := envVar(c, HTTPAddrEnv); e.Value != HTTPAddr {
			t.Errorf("%s = %q; want %q", HTTPAddrEnv, e.Value, HTTPAddr)
		}
		ann := tmpl.Annotations
		if ann["prometheus.io/port"] != strconv.Itoa(HTTPPort) || ann["prometheus.io/path"] != MetricsPath {
			t.Errorf("prometheus annotations %v; want port %d path %s", ann, HTTPPort, MetricsPath)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		g := b.dep.Spec.Template.Spec.TerminationGracePeriodSeconds
		need := b.pipe.Spec.Flush.ShutdownTimeout + LeaveMargin
		if g == nil {
			t.Fatalf("no terminationGracePeriodSeconds; want more than flush.shutdown_timeout + %v = %v", LeaveMargin, need)
		}
		if time.Duration(*g)*time.Second <= need {
			t.Errorf("terminationGracePeriodSeconds %d; want more than flush.shutdown_timeout + %v = %v", *g, LeaveMargin, need)
		}
	})
	t.Run("replicas left to the autoscaler", func(t *testing.T) {
		if b.dep.Spec.Replicas != nil {
			t.Errorf("replicas %d: every kubectl apply would reset what the HPA chose", *b.dep.Spec.Replicas)
		}
	})
	t.Run("resources", func(t *testing.T) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[r]
			lim, okLim := c.Resources.Limits[r]
			if !okReq || !okLim {
				t.Errorf("%s: request %v limit %v; want both", r, req.String(), lim.String())
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s: request %s above limit %s", r, req.String(), lim.String())
			}
		}
	})
	t.Run("security", func(t *testing.T) {
		ps := tmpl.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
			t.Error("pod securityContext.runAsNonRoot is not true")
		}
		if ps == nil || ps.RunAsUser == nil || *ps.RunAsUser != UID {
			t.Errorf("pod runAsUser is not the image's user %d", UID)
		}
		cs := c.SecurityContext
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			t.Error("container readOnlyRootFilesystem is not true")
		}
		if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Error("container allowPrivilegeEscalation is not false")
		}
		if cs == nil || cs.Capabilities == nil || !containsCapability(cs.Capabilities.Drop, "ALL") {
			t.Error("container capabilities do not drop ALL")
		}
	})
}

func containsCapability(cs []corev1.Capability, c corev1.Capability) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// secretish names a variable that must come from a Secret.
var secretish = regexp.MustCompile(`PASSWORD|SECRET|TOKEN|DSN|CREDENTIAL|PRIVATE|_KEY$|USERNAME`)

// TestK8sPipelineSecrets checks the pipeline against the Deployment's
// environment: every ${VAR} it needs is set, credentials come from the
// Secret (whose keys the example shows), and no secret is passed unused.
func TestK8sPipelineSecrets(t *testing.T) {
	b := loadBase(t)
	c := b.worker(t)
	req, opt := pipelineVars(b.pipeFile)
	used := map[string]bool{}
	for _, v := range append(req, opt...) {
		used[v] = true
	}
	for _, v := range req {
		e, ok := envVar(c, v)
		if !ok {
			t.Errorf("the pipeline needs ${%s}, which the Deployment does not set", v)
			continue
		}
		if secretish.MatchString(v) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("${%s} is a credential but the Deployment sets it in plain text", v)
		}
	}
	exampleKeys := map[string]bool{}
	for k := range b.secret.StringData {
		exampleKeys[k] = true
	}
	for k := range b.secret.Data {
		exampleKeys[k] = true
	}
	var refs int
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		refs++
		ref := e.ValueFrom.SecretKeyRef
		if ref.Name != b.secret.Name || !exampleKeys[ref.Key] {
			t.Errorf("%s reads %s/%s, which %s does not show", e.Name, ref.Name, ref.Key, secretExample)
		}
		if !used[e.Name] {
			t.Errorf("%s comes from the Secret but the pipeline never uses it", e.Name)
		}
	}
	if refs == 0 {
		t.Error("the Deployment reads no Secret: the pipeline's credentials would be in plain text")
	}
}

func TestK8sAutoscaling(t *testing.T) {
	b := loadBase(t)
	parts := documentedPartitions(t, "hpa.yaml", b.hpaFile, b.hpa.Annotations)
	t.Run("hpa", func(t *testing.T) {
		min, max := b.hpa.Spec.MinReplicas, b.hpa.Spec.MaxReplicas
		if min == nil || *min < 1 || *min > max {
			t.Errorf("minReplicas %v, maxReplicas %d", min, max)
		}
		if int(max) > parts {
			t.Errorf("maxReplicas %d exceeds the %d partitions: the extra workers would sit idle", max, parts)
		}
		var cpu bool
		for _, m := range b.hpa.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
				m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType &&
				m.Resource.Target.AverageUtilization != nil)
		}
		if !cpu {
			t.Error("the HPA has no CPU utilisation target")
		}
		if _, ok := b.worker(t).Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Error("CPU utilisation needs a CPU request on the container")
		}
	})
	t.Run("pdb", func(t *testing.T) {
		if mu := b.pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) {
			t.Errorf("PodDisruptionBudget maxUnavailable %v; want 1", mu)
		}
	})
	t.Run("metrics service", func(t *testing.T) {
		var ok bool
		for _, p := range b.svc.Spec.Ports {
			if p.Name == "metrics" {
				ok = true
				if p.Port != HTTPPort || containerPort(b.worker(t), p.TargetPort) != HTTPPort {
					t.Errorf("port metrics %d -> %s; want %d -> the container's %d", p.Port, p.TargetPort.String(), HTTPPort, HTTPPort)
				}
			}
		}
		if !ok {
			t.Errorf("the Service has no port named metrics: %+v", b.svc.Spec.Ports)
		}
	})
}

// kedaScaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1)
// the overlay uses; decoding into it strictly rejects a misspelt field, and
// trigger metadata must be strings, as KEDA's CRD requires.
type kedaScaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

// kedaTriggerAuthentication is the part of KEDA's TriggerAuthentication
// the overlay uses.
type kedaTriggerAuthentication struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

// TestK8sKEDA checks the lag-based overlay against the pipeline it scales:
// same group, topic and start position, the same SASL/TLS settings and
// credentials, brokers from the Deployment, and at most one replica per
// partition.
func TestK8sKEDA(t *testing.T) {
	b := loadBase(t)
	var kust ktypes.Kustomization
	strictDecode(t, "kustomization.yaml", readFile(t, path.Join(k8sKEDA, "kustomization.yaml")), &kust)
	var so kedaScaledObject
	var ta kedaTriggerAuthentication
	var soFile []byte
	for _, r := range kust.Resources {
		if strings.HasPrefix(r, "..") {
			continue
		}
		file := path.Join(k8sKEDA, r)
		data := readFile(t, file)
		tm := peekType(t, file, data)
		switch tm.Kind {
		case "ScaledObject":
			strictDecode(t, file, data, &so)
			soFile = data
		case "TriggerAuthentication":
			strictDecode(t, file, data, &ta)
		default:
			t.Fatalf("%s: unexpected kind %q", file, tm.Kind)
		}
		if tm.APIVersion != "keda.sh/v1alpha1" {
			t.Errorf("%s: apiVersion %q; want keda.sh/v1alpha1", file, tm.APIVersion)
		}
	}
	if so.Kind == "" || ta.Kind == "" {
		t.Fatalf("the overlay lacks a ScaledObject or a TriggerAuthentication")
	}
	parts := documentedPartitions(t, "scaledobject.yaml", soFile, so.Metadata.Annotations)
	if hpaParts, _ := strconv.Atoi(b.hpa.Annotations[partitionsAnnotation]); hpaParts != parts {
		t.Errorf("the ScaledObject documents %d partitions, the HPA %d", parts, hpaParts)
	}

	s := so.Spec
	if s.ScaleTargetRef.Name != b.dep.Name || (s.ScaleTargetRef.Kind != "" && s.ScaleTargetRef.Kind != "Deployment") {
		t.Errorf("the ScaledObject scales %+v; want the Deployment %s", s.ScaleTargetRef, b.dep.Name)
	}
	if s.MinReplicaCount == nil || s.MaxReplicaCount == nil || *s.MinReplicaCount < 1 || *s.MinReplicaCount > *s.MaxReplicaCount {
		t.Errorf("minReplicaCount %v maxReplicaCount %v", s.MinReplicaCount, s.MaxReplicaCount)
	} else if int(*s.MaxReplicaCount) > parts {
		t.Errorf("maxReplicaCount %d exceeds the %d partitions", *s.MaxReplicaCount, parts)
	}
	if len(s.Triggers) != 1 || s.Triggers[0].Type != "kafka" {
		t.Fatalf("triggers %+v; want one kafka trigger", s.Triggers)
	}
	tr := s.Triggers[0]
	md := tr.Metadata
	spec := b.pipe.Spec
	for _, tc := range []struct{ field, got, want string }{
		{"consumerGroup", md["consumerGroup"], spec.Kafka.Group},
		{"offsetResetPolicy", md["offsetResetPolicy"], string(spec.Source.Start)},
		{"allowIdleConsumers", md["allowIdleConsumers"], "false"},
		{"sasl", md["sasl"], kedaSASL(spec.Kafka.SASL)},
		{"tls", md["tls"], kedaTLS(spec.Kafka.TLS)},
	} {
		if tc.got != tc.want {
			t.Errorf("trigger %s = %q; the pipeline needs %q", tc.field, tc.got, tc.want)
		}
	}
	if !containsString(spec.Source.Topics, md["topic"]) {
		t.Errorf("trigger topic %q is not a source of the pipeline %v", md["topic"], spec.Source.Topics)
	}
	if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("lagThreshold %q; want a positive integer", md["lagThreshold"])
	}
	if e, ok := envVar(b.worker(t), md["bootstrapServersFromEnv"]); !ok || e.Value == "" {
		t.Errorf("bootstrapServersFromEnv %q names no literal variable of the worker", md["bootstrapServersFromEnv"])
	}

	// Credentials: the TriggerAuthentication reads the same Secret keys
	// the pipeline's kafka.sasl username and password come from.
	if tr.AuthenticationRef == nil || tr.AuthenticationRef.Name != ta.Metadata.Name {
		t.Fatalf("the trigger's authenticationRef %+v does not name the TriggerAuthentication %s", tr.AuthenticationRef, ta.Metadata.Name)
	}
	params := map[string]string{}
	for _, r := range ta.Spec.SecretTargetRef {
		if r.Name != b.secret.Name {
			t.Errorf("parameter %s reads Secret %s; want %s", r.Parameter, r.Name, b.secret.Name)
		}
		params[r.Parameter] = r.Key
	}
	for param, field := range map[string]string{"username": "username", "password": "password"} {
		raw := rawField(t, b.pipeFile, "kafka", "sasl", field)
		m := varRef.FindStringSubmatch(raw)
		if m == nil {
			t.Fatalf("kafka.sasl.%s %q is not a ${VAR}", field, raw)
		}
		e, _ := envVar(b.worker(t), m[1])
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("the worker's ${%s} does not come from a Secret", m[1])
		} else if key := e.ValueFrom.SecretKeyRef.Key; key != params[param] {
			t.Errorf("KEDA's %s is Secret key %q; the worker's ${%s} is key %q", param, params[param], m[1], key)
		}
	}
}

// kedaSASL is the KEDA kafka trigger's sasl value for a pipeline's sasl.
func kedaSASL(s *pipeline.SASLConfig) string {
	if s == nil {
		return ""
	}
	return map[pipeline.SASLMechanism]string{
		"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512",
	}[s.Mechanism]
}

func kedaTLS(t *pipeline.TLSConfig) string {
	if t == nil || !t.Enabled {
		return ""
	}
	return "enable"
}

// kustomize builds a kustomization directory with kustomize's library, as
// kubectl apply -k would.
func kustomize(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return rm
}

func TestK8sKustomizeBuild(t *testing.T) {
	b := loadBase(t)
	for _, tc := range []struct {
		dir   string
		kinds []string
	}{
		{k8sBase, []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"}},
		{k8sKEDA, []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "ScaledObject", "Service", "TriggerAuthentication"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			rm := kustomize(t, tc.dir)
			var kinds []string
			var dep appsv1.Deployment
			var cm corev1.ConfigMap
			for _, r := range rm.Resources() {
				kinds = append(kinds, r.GetKind())
				y, err := r.AsYAML()
				if err != nil {
					t.Fatal(err)
				}
				switch r.GetKind() {
				case "Deployment":
					strictDecode(t, "built Deployment", y, &dep)
				case "ConfigMap":
					strictDecode(t, "built ConfigMap", y, &cm)
				}
			}
			sort.Strings(kinds)
			if !equalStrings(kinds, tc.kinds) {
				t.Fatalf("kustomize build %s gives %v; want %v", tc.dir, kinds, tc.kinds)
			}
			// The generated ConfigMap carries the pipeline under a hashed
			// name, and the Deployment mounts that name.
			gen := b.kust.ConfigMapGenerator[0].Name
			if !strings.HasPrefix(cm.Name, gen+"-") {
				t.Errorf("ConfigMap %s; want %s-<hash>", cm.Name, gen)
			}
			if cm.Data[path.Base(PipelinePath)] != string(b.pipeFile) {
				t.Errorf("the ConfigMap's %s is not the pipeline file", path.Base(PipelinePath))
			}
			var mounted bool
			for _, v := range dep.Spec.Template.Spec.Volumes {
				mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == cm.Name)
			}
			if !mounted {
				t.Errorf("the built Deployment does not mount the ConfigMap %s", cm.Name)
			}
			im := b.kust.Images[0]
			if got, want := dep.Spec.Template.Spec.Containers[0].Image, im.NewName+":"+im.NewTag; got != want {
				t.Errorf("built image %s; want %s", got, want)
			}
		})
	}
}

// k8sCascade is the cascade overlay: one sub-kustomization per stage, each
// the base with the stage's pipeline, name suffix, label and HPA bounds.
const k8sCascade = "deploy/k8s/overlays/cascade"

// cascadeStage is one stage of the built cascade overlay.
type cascadeStage struct {
	name     string // the stage's directory under k8sCascade, and its name suffix
	example  string // the example pipeline it runs with other connections
	dep      appsv1.Deployment
	hpa      autoscalingv2.HorizontalPodAutoscaler
	pdb      policyv1.PodDisruptionBudget
	svc      corev1.Service
	pipeFile []byte
	pipe     *pipeline.Pipeline
}

// buildCascade builds the cascade overlay with kustomize and sorts its
// resources into stages by their name suffix.
func buildCascade(t *testing.T) []*cascadeStage {
	t.Helper()
	stages := []*cascadeStage{
		{name: "enrich", example: "examples/cascade/enrich.yaml"},
		{name: "aggregate", example: "examples/cascade/aggregate.yaml"},
	}
	byName := map[string]*cascadeStage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	rm := kustomize(t, k8sCascade)
	var kinds []string
	cms := map[string]corev1.ConfigMap{}
	for _, r := range rm.Resources() {
		kinds = append(kinds, r.GetKind())
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetKind() == "ConfigMap" {
			var cm corev1.ConfigMap
			strictDecode(t, "built ConfigMap", y, &cm)
			cms[cm.Name] = cm
			continue
		}
		name := r.GetName()
		s := byName[name[strings.LastIndex(name, "-")+1:]]
		if s == nil {
			t.Fatalf("built %s %s belongs to no stage", r.GetKind(), name)
		}
		switch r.GetKind() {
		case "Deployment":
			strictDecode(t, name, y, &s.dep)
		case "HorizontalPodAutoscaler":
			strictDecode(t, name, y, &s.hpa)
		case "PodDisruptionBudget":
			strictDecode(t, name, y, &s.pdb)
		case "Service":
			strictDecode(t, name, y, &s.svc)
		default:
			t.Fatalf("built %s %s: unexpected kind", r.GetKind(), name)
		}
	}
	sort.Strings(kinds)
	want := []string{"ConfigMap", "ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "HorizontalPodAutoscaler",
		"PodDisruptionBudget", "PodDisruptionBudget", "Service", "Service"}
	if !equalStrings(kinds, want) {
		t.Fatalf("kustomize build %s gives %v; want %v (two stages of the base)", k8sCascade, kinds, want)
	}
	for _, s := range stages {
		if s.dep.Name != "eddy-worker-"+s.name {
			t.Fatalf("stage %s: Deployment %q; want eddy-worker-%s", s.name, s.dep.Name, s.name)
		}
		var cm string
		for _, v := range s.dep.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				cm = v.ConfigMap.Name
			}
		}
		data, ok := cms[cm].Data[path.Base(PipelinePath)]
		if !ok {
			t.Fatalf("stage %s: the Deployment mounts ConfigMap %q, which has no %s", s.name, cm, path.Base(PipelinePath))
		}
		if file := readFile(t, path.Join(k8sCascade, s.name, "pipeline.yaml")); data != string(file) {
			t.Errorf("stage %s: the mounted pipeline is not %s/%s/pipeline.yaml", s.name, k8sCascade, s.name)
		}
		s.pipeFile = []byte(data)
		c := s.dep.Spec.Template.Spec.Containers
		if len(c) != 1 {
			t.Fatalf("stage %s: %d containers", s.name, len(c))
		}
		s.pipe = parsePipeline(t, s.name+"/pipeline.yaml", s.pipeFile, podEnv(c[0]))
	}
	return stages
}

// TestK8sCascade builds the cascade overlay and checks each stage's
// Deployment and HPA against its pipeline, and the stages against each
// other: each HPA scales its own Deployment on CPU, with a CPU request to
// measure against, min <= max <= the documented partitions of the stage's
// source topic; the stages' selectors never pick each other's pods; each
// runs its example pipeline (the same steps, topics and ids, other
// connections) in its own group; stage 2 reads stage 1's sink.
func TestK8sCascade(t *testing.T) {
	stages := buildCascade(t)
	groups := map[string]string{}
	for _, s := range stages {
		t.Run(s.name, func(t *testing.T) {
			c := s.dep.Spec.Template.Spec.Containers[0]
			tmpl := s.dep.Spec.Template

			ref := s.hpa.Spec.ScaleTargetRef
			if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != s.dep.Name {
				t.Errorf("the HPA %s scales %+v; want the Deployment %s", s.hpa.Name, ref, s.dep.Name)
			}
			hpaFile := path.Join(k8sCascade, s.name, "hpa.yaml")
			parts := documentedPartitions(t, hpaFile, readFile(t, hpaFile), s.hpa.Annotations)
			text := strings.Join(strings.Fields(strings.ReplaceAll(string(readFile(t, hpaFile)), "#", " ")), " ")
			if !strings.Contains(text, "source topic "+s.pipe.Spec.Source.Topics[0]+" has "+strconv.Itoa(parts)+" partitions") {
				t.Errorf("%s does not name the stage's source topic %s", hpaFile, s.pipe.Spec.Source.Topics[0])
			}
			min, max := s.hpa.Spec.MinReplicas, s.hpa.Spec.MaxReplicas
			if min == nil || *min < 1 || *min > max {
				t.Errorf("minReplicas %v, maxReplicas %d", min, max)
			}
			if int(max) > parts {
				t.Errorf("maxReplicas %d exceeds the %d partitions of %v: the extra workers would sit idle", max, parts, s.pipe.Spec.Source.Topics)
			}
			var cpu bool
			for _, m := range s.hpa.Spec.Metrics {
				cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
					m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType &&
					m.Resource.Target.AverageUtilization != nil && *m.Resource.Target.AverageUtilization > 0)
			}
			if !cpu {
				t.Error("the HPA has no CPU utilisation target")
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				if !okReq || !okLim || req.Cmp(lim) > 0 {
					t.Errorf("%s: request %s (set %v), limit %s (set %v); want both, request <= limit", r, req.String(), okReq, lim.String(), okLim)
				}
			}
			if s.dep.Spec.Replicas != nil {
				t.Errorf("replicas %d: every kubectl apply would reset what the HPA chose", *s.dep.Spec.Replicas)
			}
			if g := tmpl.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= s.pipe.Spec.Flush.ShutdownTimeout+LeaveMargin {
				t.Errorf("terminationGracePeriodSeconds %v; want more than flush.shutdown_timeout + %v", g, LeaveMargin)
			}

			// Every selector of this stage picks its pods and no other stage's.
			sels := map[string]*metav1.LabelSelector{
				"Deployment": s.dep.Spec.Selector, "PodDisruptionBudget": s.pdb.Spec.Selector,
				"Service": {MatchLabels: s.svc.Spec.Selector},
			}
			for _, tsc := range tmpl.Spec.TopologySpreadConstraints {
				sels["topologySpreadConstraint"] = tsc.LabelSelector
			}
			for what, sel := range sels {
				if !matches(t, sel, tmpl.Labels) {
					t.Errorf("the %s's selector %v does not match the stage's pods %v", what, sel, tmpl.Labels)
				}
				for _, o := range stages {
					if o != s && matches(t, sel, o.dep.Spec.Template.Labels) {
						t.Errorf("the %s's selector %v also matches stage %s's pods", what, sel, o.name)
					}
				}
			}

			// The example's pipeline, with the base's connections.
			ex := parsePipeline(t, s.example, readFile(t, s.example), nil)
			got, want := s.pipe.Spec, ex.Spec
			same := func(what string, a, b any) {
				if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
					t.Errorf("%s differs from %s's:\n%s\n%s", what, s.example, ja, jb)
				}
			}
			same("name", got.Name, want.Name)
			same("source", got.Source, want.Source)
			same("steps", got.Steps, want.Steps)
			same("sink", got.Sink, want.Sink)
			same("dead_letter", got.DeadLetter, want.DeadLetter)
			same("dedup.enabled", got.Dedup.Enabled, want.Dedup.Enabled)
			if got.State.Backend != pipeline.BackendRedis {
				t.Errorf("state.backend %s; want redis, shared by the stage's pods", got.State.Backend)
			}
			if other, ok := groups[got.Kafka.Group]; ok {
				t.Errorf("group %s is stage %s's too: each stage needs its own", got.Kafka.Group, other)
			}
			groups[got.Kafka.Group] = s.name
		})
	}
	enrich, aggregate := stages[0].pipe, stages[1].pipe
	if enrich.Sink == nil || !equalStrings(aggregate.Spec.Source.Topics, []string{enrich.Sink.Topics[0]}) {
		t.Errorf("stage 2 reads %v; want stage 1's sink", aggregate.Spec.Source.Topics)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestK8sQueryService: the optional query Service selects the base's
// worker pods and reaches their named http port, where -query serves the
// state endpoints, and the worker reads EDDY_QUERY.
func TestK8sQueryService(t *testing.T) {
	b := loadBase(t)
	var svc corev1.Service
	file := "deploy/k8s/query/service.yaml"
	strictDecode(t, file, readFile(t, file), &svc)
	tmpl := b.dep.Spec.Template
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("%s: selector %v does not match the pods %v", file, svc.Spec.Selector, tmpl.Labels)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("%s is headless: queries would not be load-balanced", file)
	}
	c := b.worker(t)
	for _, p := range svc.Spec.Ports {
		found := false
		for _, cp := range c.Ports {
			found = found || cp.Name == p.TargetPort.String()
		}
		if !found {
			t.Errorf("%s: targetPort %s is no port of the worker container %+v", file, p.TargetPort.String(), c.Ports)
		}
	}
	if !strings.Contains(string(readFile(t, "cmd/worker/run.go")), `envOr("EDDY_QUERY"`) {
		t.Errorf("worker run does not read EDDY_QUERY, which %s tells users to set", file)
	}
}
