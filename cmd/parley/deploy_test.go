package main

// Checks of the deploy files at the repository root: Dockerfile,
// .dockerignore and render.yaml. Docker and Render are not available to
// tests, so these read the files and check them against what the rest of
// the repository says: README.md's build commands, the config package's
// rules, and the fields of Render's Blueprint spec
// (https://render.com/docs/blueprint-spec, schema
// https://render.com/schema/render.yaml.json).

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/config"
)

const deployRepoRoot = "../.."

func deployReadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRepoRoot, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// deployReport fails t with one line per problem.
func deployReport(t *testing.T, file string, errs []string) {
	t.Helper()
	for _, e := range errs {
		t.Errorf("%s: %s", file, e)
	}
}

// ---------------------------------------------------------------------------
// Render Blueprint fields

// bpField is one node of the Render Blueprint schema: a mapping with its
// allowed keys, a list of items, or (neither) a single value.
type bpField struct {
	fields     map[string]*bpField
	deprecated map[string]string // key → what the spec says to use instead
	item       *bpField
}

func bpObject(fields map[string]*bpField) *bpField { return &bpField{fields: fields} }
func bpList(item *bpField) *bpField                { return &bpField{item: item} }

// bpSchema is the allowlist of Blueprint keys, taken from Render's
// Blueprint YAML reference and its example file, and from the field
// reference in Render's own render-oss plugins. It is deliberately closed:
// a key Render does not document, or one misspelt (healthcheckPath), fails.
// To use a new field, check it in the spec first, then add it here.
var bpSchema = func() *bpField {
	scalar := &bpField{}
	scalars := func(names ...string) map[string]*bpField {
		m := make(map[string]*bpField, len(names))
		for _, n := range names {
			m[n] = scalar
		}
		return m
	}
	with := func(m map[string]*bpField, more map[string]*bpField) map[string]*bpField {
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	registryCreds := bpObject(map[string]*bpField{"fromRegistryCreds": bpObject(scalars("name"))})
	ipAllowList := bpList(bpObject(scalars("source", "description")))

	envVar := bpObject(with(scalars("key", "value", "generateValue", "sync", "fromGroup"), map[string]*bpField{
		"fromDatabase": bpObject(scalars("name", "property")),
		"fromService":  bpObject(scalars("type", "name", "property", "envVarKey")),
	}))

	service := &bpField{
		fields: with(scalars(
			"type", "name", "runtime", "repo", "region", "plan", "branch", "rootDir",
			"buildCommand", "startCommand", "preDeployCommand", "autoDeployTrigger",
			"maxShutdownDelaySeconds", "healthCheckPath", "numInstances",
			"dockerfilePath", "dockerContext", "dockerCommand",
			"schedule", "staticPublishPath", "maxmemoryPolicy", "previewPlan",
		), map[string]*bpField{
			"envVars":            bpList(envVar),
			"domains":            bpList(scalar),
			"disk":               bpObject(scalars("name", "mountPath", "sizeGB")),
			"scaling":            bpObject(scalars("minInstances", "maxInstances", "targetCPUPercent", "targetMemoryPercent")),
			"buildFilter":        bpObject(map[string]*bpField{"paths": bpList(scalar), "ignoredPaths": bpList(scalar)}),
			"registryCredential": registryCreds,
			"image":              bpObject(map[string]*bpField{"url": scalar, "creds": registryCreds}),
			"previews":           bpObject(scalars("generation", "plan", "numInstances")),
			"ipAllowList":        ipAllowList,
			"headers":            bpList(bpObject(scalars("path", "name", "value"))),
			"routes":             bpList(bpObject(scalars("type", "source", "destination"))),
		}),
		deprecated: map[string]string{
			"env":                        "runtime",
			"autoDeploy":                 "autoDeployTrigger (commit, checksPass or off)",
			"pullRequestPreviewsEnabled": "previews.generation",
		},
	}
	database := bpObject(with(scalars(
		"name", "plan", "previewPlan", "previewDiskSizeGB", "postgresMajorVersion",
		"databaseName", "user", "region", "diskSizeGB", "storageAutoscalingEnabled",
	), map[string]*bpField{
		"readReplicas":     bpList(bpObject(scalars("name"))),
		"highAvailability": bpObject(scalars("enabled")),
		"ipAllowList":      ipAllowList,
	}))
	// Env groups take literal or generated values only: no sync: false and
	// no references to services, databases or other groups.
	envVarGroup := bpObject(map[string]*bpField{
		"name":    scalar,
		"envVars": bpList(bpObject(scalars("key", "value", "generateValue"))),
	})
	environment := bpObject(map[string]*bpField{
		"name":         scalar,
		"services":     bpList(service),
		"databases":    bpList(database),
		"envVarGroups": bpList(envVarGroup),
	})
	return &bpField{
		fields: map[string]*bpField{
			"services":     bpList(service),
			"databases":    bpList(database),
			"envVarGroups": bpList(envVarGroup),
			"previews":     bpObject(scalars("generation", "expireAfterDays")),
			"projects":     bpList(bpObject(map[string]*bpField{"name": scalar, "environments": bpList(environment)})),
		},
		deprecated: map[string]string{"previewsEnabled": "previews.generation"},
	}
}()

// checkBlueprintKeys parses a Blueprint and returns one message per key
// that is not in bpSchema, or is deprecated, or holds the wrong shape.
func checkBlueprintKeys(file string, src []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return []string{"not valid YAML: " + err.Error()}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return []string{"empty document"}
	}
	var errs []string
	walkBlueprintKeys(file, doc.Content[0], bpSchema, "", &errs)
	return errs
}

func walkBlueprintKeys(file string, n *yaml.Node, f *bpField, at string, errs *[]string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	where := fmt.Sprintf("%s:%d:%d: ", file, n.Line, n.Column)
	name := at
	if name == "" {
		name = "the top level"
	}
	switch {
	case f.fields != nil:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, where+name+" must be a mapping of fields")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			p := key
			if at != "" {
				p = at + "." + key
			}
			kwhere := fmt.Sprintf("%s:%d:%d: ", file, k.Line, k.Column)
			if key == "<<" {
				*errs = append(*errs, kwhere+p+": YAML merge keys are not part of the Blueprint format; write the fields out")
				continue
			}
			if repl, ok := f.deprecated[key]; ok {
				*errs = append(*errs, fmt.Sprintf("%s%s is deprecated in Render's Blueprint spec; use %s", kwhere, p, repl))
				continue
			}
			sub, ok := f.fields[key]
			if !ok {
				msg := fmt.Sprintf("%s%s is not a Render Blueprint field", kwhere, p)
				if s := bpClosestKey(key, f.fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				*errs = append(*errs, msg+"; fields are case-sensitive, see https://render.com/docs/blueprint-spec")
				continue
			}
			walkBlueprintKeys(file, v, sub, p, errs)
		}
	case f.item != nil:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, where+name+" must be a list")
			return
		}
		for i, c := range n.Content {
			walkBlueprintKeys(file, c, f.item, fmt.Sprintf("%s[%d]", at, i), errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, where+name+" must be a single value, not a mapping or list")
		}
	}
}

// bpClosestKey suggests the allowed key nearest to key: the same letters in
// another case, or at most two edits away.
func bpClosestKey(key string, allowed map[string]*bpField) string {
	best, bestDist := "", 3
	for k := range allowed {
		if strings.EqualFold(k, key) {
			return k
		}
		if d := bpEditDistance(strings.ToLower(k), strings.ToLower(key)); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

func bpEditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func TestDeployRenderBlueprintFields(t *testing.T) {
	errs := checkBlueprintKeys("render.yaml", []byte(deployReadFile(t, "render.yaml")))
	deployReport(t, "render.yaml", errs)

	// The checker itself: it must pass what the spec allows and catch
	// what it does not.
	const head = "services:\n  - type: web\n    name: parley\n    runtime: docker\n"
	tests := []struct {
		name, yaml string
		want       string // substring of the one expected error; "" for none
	}{
		{"minimal docker web service", head, ""},
		{"every field this repo uses", head + `    dockerfilePath: ./Dockerfile
    dockerContext: .
    plan: starter
    region: oregon
    numInstances: 1
    autoDeployTrigger: commit
    healthCheckPath: /readyz
    maxShutdownDelaySeconds: 30
    disk:
      name: data
      mountPath: /data
      sizeGB: 1
    envVars:
      - key: A
        value: "1"
      - key: B
        sync: false
      - key: C
        generateValue: true
      - key: D
        fromService:
          type: pserv
          name: ollama
          property: hostport
      - fromGroup: shared
`, ""},
		{"typo healthcheckPath", head + "    healthcheckPath: /readyz\n", "services[0].healthcheckPath is not a Render Blueprint field (did you mean healthCheckPath?)"},
		{"typo in disk", head + "    disk:\n      name: d\n      mountpath: /data\n", "services[0].disk.mountpath is not a Render Blueprint field (did you mean mountPath?)"},
		{"typo in env var", head + "    envVars:\n      - key: A\n        sync: false\n        vaule: x\n", "services[0].envVars[0].vaule is not a Render Blueprint field (did you mean value?)"},
		{"invented field", head + "    replicas: 2\n", "services[0].replicas is not a Render Blueprint field"},
		{"unknown top-level field", head + "service: {}\n", "service is not a Render Blueprint field (did you mean services?)"},
		{"deprecated env", "services:\n  - type: web\n    name: p\n    env: docker\n", "services[0].env is deprecated in Render's Blueprint spec; use runtime"},
		{"deprecated autoDeploy", head + "    autoDeploy: true\n", "use autoDeployTrigger"},
		{"disk as a path", head + "    disk: /data\n", "services[0].disk must be a mapping of fields"},
		{"envVars as a mapping", head + "    envVars:\n      A: b\n", "services[0].envVars must be a list"},
		{"sync false in an env group", "envVarGroups:\n  - name: g\n    envVars:\n      - key: A\n        sync: false\n", "envVarGroups[0].envVars[0].sync is not a Render Blueprint field"},
		{"services not a list", "services:\n  type: web\n", "services must be a list"},
		{"not YAML", "services: [\n", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkBlueprintKeys("render.yaml", []byte(tt.yaml))
			if tt.want == "" {
				deployReport(t, "render.yaml", errs)
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) {
				t.Errorf("want one error containing %q, got %q", tt.want, errs)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

type dfInstr struct {
	line int
	cmd  string // upper case: FROM, RUN, ENV, ...
	args string // the rest, continuation lines joined
}

type dfStage struct {
	line   int
	from   string // base image
	name   string // AS name, or ""
	instrs []dfInstr
	env    map[string]string // after all ENV instructions
}

// parseDockerfile splits a Dockerfile into stages of instructions. It
// knows comments, line continuations and FROM … AS; it does not know
// heredocs or a changed escape character (which this repo does not use).
func parseDockerfile(src string) ([]*dfStage, error) {
	var stages []*dfStage
	lines := strings.Split(src, "\n")
	blank := func(s string) bool {
		s = strings.TrimSpace(s)
		return s == "" || strings.HasPrefix(s, "#")
	}
	for i := 0; i < len(lines); i++ {
		if blank(lines[i]) {
			continue
		}
		start := i + 1
		var parts []string
		line := strings.TrimSpace(lines[i])
		for {
			cont := strings.HasSuffix(line, `\`)
			parts = append(parts, strings.TrimSpace(strings.TrimSuffix(line, `\`)))
			if !cont {
				break
			}
			// Docker skips comment (and empty) lines inside a continuation.
			for i++; i < len(lines) && blank(lines[i]); i++ {
			}
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: continuation runs past the end of the file", start)
			}
			line = strings.TrimSpace(lines[i])
		}
		full := strings.Join(parts, " ")
		word, args := dfCutSpace(full)
		in := dfInstr{line: start, cmd: strings.ToUpper(word), args: args}
		if strings.Contains(args, "<<") && (in.cmd == "RUN" || in.cmd == "COPY") {
			return nil, fmt.Errorf("line %d: heredocs are not understood by this test", start)
		}
		if in.cmd == "FROM" {
			_, rest := dfCutFlags(args)
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", start)
			}
			st := &dfStage{line: start, from: f[0], env: map[string]string{}}
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			for _, prev := range stages {
				if prev.name != "" && prev.name == st.from {
					for k, v := range prev.env {
						st.env[k] = v
					}
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue // global ARG before the first FROM
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
		}
		st := stages[len(stages)-1]
		st.instrs = append(st.instrs, in)
		if in.cmd == "ENV" {
			kvs, err := dfParseEnv(in.args)
			if err != nil {
				return nil, fmt.Errorf("line %d: ENV: %w", start, err)
			}
			for _, kv := range kvs {
				st.env[kv[0]] = st.expand(kv[1])
			}
		}
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}

// expand substitutes $VAR, ${VAR} and ${VAR:-default} from the stage's ENV,
// as the builder does in ENV, VOLUME, EXPOSE, USER, WORKDIR and COPY.
func (st *dfStage) expand(s string) string {
	return os.Expand(s, func(name string) string {
		if k, def, ok := strings.Cut(name, ":-"); ok {
			if v := st.env[k]; v != "" {
				return v
			}
			return def
		}
		return st.env[name]
	})
}

func (st *dfStage) all(cmd string) []dfInstr {
	var out []dfInstr
	for _, in := range st.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (st *dfStage) last(cmd string) (dfInstr, bool) {
	all := st.all(cmd)
	if len(all) == 0 {
		return dfInstr{}, false
	}
	return all[len(all)-1], true
}

func dfCutSpace(s string) (string, string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

// dfCutFlags splits leading --flag[=value] words off an instruction's args.
func dfCutFlags(args string) (map[string]string, string) {
	flags := map[string]string{}
	rest := strings.TrimSpace(args)
	for strings.HasPrefix(rest, "--") {
		var tok string
		tok, rest = dfCutSpace(rest)
		k, v, _ := strings.Cut(strings.TrimPrefix(tok, "--"), "=")
		flags[k] = v
	}
	return flags, rest
}

// dfParseEnv reads ENV's "K=V K2="v 2"" form or the legacy "K V" form.
func dfParseEnv(args string) ([][2]string, error) {
	first, rest := dfCutSpace(args)
	if first == "" {
		return nil, fmt.Errorf("no variable")
	}
	if !strings.Contains(first, "=") {
		return [][2]string{{first, rest}}, nil
	}
	var out [][2]string
	var tok strings.Builder
	var quote rune
	flush := func() error {
		if tok.Len() == 0 {
			return nil
		}
		k, v, ok := strings.Cut(tok.String(), "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not KEY=value", tok.String())
		}
		out = append(out, [2]string{k, v})
		tok.Reset()
		return nil
	}
	for _, r := range args {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && unicode.IsSpace(r):
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			tok.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// dfExecForm reads a JSON-array CMD/ENTRYPOINT/RUN, or wraps a shell form in
// /bin/sh -c as Docker does.
func dfExecForm(args string) ([]string, bool) {
	args = strings.TrimSpace(args)
	if strings.HasPrefix(args, "[") {
		var argv []string
		if json.Unmarshal([]byte(args), &argv) == nil {
			return argv, true
		}
	}
	return []string{"/bin/sh", "-c", args}, false
}

// readmeBuildCommands returns the command lines of the first code block
// under README.md's "## Build and deploy" heading.
func readmeBuildCommands(readme string) ([]string, error) {
	const heading = "## Build and deploy"
	lines := strings.Split(readme, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == heading })
	if i < 0 {
		return nil, fmt.Errorf("README.md has no %q section", heading)
	}
	for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
		if strings.HasPrefix(lines[i], "## ") {
			return nil, fmt.Errorf("README.md's %q section has no code block", heading)
		}
	}
	var cmds []string
	for i++; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "```") {
			if len(cmds) == 0 {
				return nil, fmt.Errorf("README.md's %q code block is empty", heading)
			}
			return cmds, nil
		}
		if l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return nil, fmt.Errorf("README.md's %q code block is not closed", heading)
}

// deployImage is what the deploy checks learn from the Dockerfile.
type deployImage struct {
	env     map[string]string // the final stage's ENV
	dataDir string            // PARLEY_DATA_DIR, also a VOLUME
	port    string            // PORT, also EXPOSEd
}

// dfShellless are base images without /bin/sh, wget or curl.
var dfShellless = []string{"scratch", "gcr.io/distroless/", "cgr.dev/chainguard/static"}

// dfSmallBases are the run-stage bases this repo accepts.
var dfSmallBases = []string{"alpine:", "busybox:", "scratch", "gcr.io/distroless/", "cgr.dev/chainguard/"}

// checkDockerfile checks the Dockerfile's build stage against README.md's
// build commands and its run stage against what Parley needs.
func checkDockerfile(src string, readmeCmds []string) (deployImage, []string) {
	var img deployImage
	var errs []string
	fail := func(line int, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, msg)
	}
	stages, err := parseDockerfile(src)
	if err != nil {
		return img, []string{err.Error()}
	}
	if len(stages) < 2 {
		return img, []string{"want a multi-stage build: a golang build stage and a small run stage"}
	}
	final := stages[len(stages)-1]
	img.env = final.env

	// The build stage is the one the run stage copies the binary from.
	var outPath string
	for _, c := range readmeCmds {
		f := strings.Fields(c)
		if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
			outPath = f[i+1]
		}
	}
	if outPath == "" {
		fail(0, "README.md's build commands have no go build -o OUTPUT")
	}
	var build *dfStage
	var binPath string
	for _, in := range final.all("COPY") {
		flags, rest := dfCutFlags(in.args)
		from, ok := flags["from"]
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || !slices.Contains(f[:len(f)-1], outPath) {
			continue
		}
		for idx, st := range stages[:len(stages)-1] {
			if st.name == from || strconv.Itoa(idx) == from {
				build = st
			}
		}
		binPath = final.expand(f[len(f)-1])
		if strings.HasSuffix(binPath, "/") {
			binPath += path.Base(outPath)
		}
	}
	if build == nil {
		fail(final.line, "the run stage does not COPY --from=<build stage> %s (the output of README.md's go build)", outPath)
		return img, errs
	}

	// Build stage: golang 1.26 and exactly README.md's commands, modules first.
	if !strings.HasPrefix(build.from, "golang:1.26") {
		fail(build.line, "build stage FROM %s: want golang:1.26 (go.mod says go 1.26)", build.from)
	}
	var runs []dfInstr
	for _, in := range build.all("RUN") {
		if flags, _ := dfCutFlags(in.args); len(flags) > 0 {
			fail(in.line, "build RUN has flags %v: README.md's commands are run as they are", flags)
		}
		if _, isExec := dfExecForm(in.args); isExec {
			fail(in.line, "build RUN in exec form: write README.md's command line as it is")
		}
		runs = append(runs, in)
	}
	for _, in := range runs {
		if !slices.Contains(readmeCmds, in.args) {
			fail(in.line, "build stage runs %q, which is not a command of README.md's \"Build and deploy\" block %q", in.args, readmeCmds)
		}
	}
	var got []string
	for _, in := range runs {
		got = append(got, in.args)
	}
	if !slices.Equal(got, readmeCmds) {
		fail(build.line, "build stage RUNs %q; README.md says the Dockerfile builds with exactly %q, in that order", got, readmeCmds)
	}
	// Layer caching: only go.mod and go.sum are copied before go mod download.
	copied := map[string]bool{}
	for _, in := range build.instrs {
		if in.cmd == "RUN" {
			if !copied["go.mod"] || !copied["go.sum"] {
				fail(in.line, "build stage runs %q before copying go.mod and go.sum on their own (layer caching)", in.args)
			}
			break
		}
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		_, rest := dfCutFlags(in.args)
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		srcs := f[:len(f)-1]
		for _, s := range srcs {
			if s != "go.mod" && s != "go.sum" {
				fail(in.line, "build stage copies %s before `go mod download`: copy go.mod and go.sum first so the module layer is cached", s)
			}
		}
		for _, s := range srcs {
			copied[s] = true
		}
	}

	// Run stage.
	if !slices.ContainsFunc(dfSmallBases, func(p string) bool { return strings.HasPrefix(final.from, p) }) {
		fail(final.line, "run stage FROM %s: want a small base (%s)", final.from, strings.Join(dfSmallBases, ", "))
	}
	noShell := slices.ContainsFunc(dfShellless, func(p string) bool { return strings.HasPrefix(final.from, p) })

	if u, ok := final.last("USER"); !ok {
		fail(final.line, "run stage has no USER: the image would run as root")
	} else if name, _, _ := strings.Cut(final.expand(u.args), ":"); name == "" || name == "root" || name == "0" {
		fail(u.line, "USER %s: want a non-root user", u.args)
	}

	img.dataDir = final.env["PARLEY_DATA_DIR"]
	if img.dataDir == "" {
		fail(final.line, "run stage does not set ENV PARLEY_DATA_DIR (the JetStream directory; default ./data)")
	} else if !path.IsAbs(img.dataDir) {
		fail(final.line, "PARLEY_DATA_DIR=%s: want an absolute path", img.dataDir)
	}
	var volumes []string
	for _, in := range final.all("VOLUME") {
		if argv, isExec := dfExecForm(in.args); isExec {
			volumes = append(volumes, argv...)
		} else {
			volumes = append(volumes, strings.Fields(final.expand(in.args))...)
		}
	}
	if img.dataDir != "" && !slices.Contains(volumes, img.dataDir) {
		fail(final.line, "no VOLUME %s: the data directory (PARLEY_DATA_DIR) must be a volume, found VOLUME %q", img.dataDir, volumes)
	}

	if v, ok := final.env["PARLEY_LISTEN"]; ok {
		fail(final.line, "ENV PARLEY_LISTEN=%s: leave it unset so that Parley listens on 0.0.0.0:$PORT and a platform's PORT (Render's) wins", v)
	}
	img.port = final.env["PORT"]
	if img.port == "" {
		fail(final.line, "run stage does not set ENV PORT (Parley then listens on 127.0.0.1:8080, unreachable from outside the container)")
	}
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		for _, p := range strings.Fields(final.expand(in.args)) {
			exposed = append(exposed, strings.TrimSuffix(p, "/tcp"))
		}
	}
	if img.port != "" && !slices.Contains(exposed, img.port) {
		fail(final.line, "ENV PORT=%s but EXPOSE %q", img.port, exposed)
	}
	if a := final.env["PARLEY_AUTH"]; a != "token" {
		fail(final.line, "ENV PARLEY_AUTH=%q: want token (config refuses auth none on a non-loopback address)", a)
	}

	if hc, ok := final.last("HEALTHCHECK"); !ok {
		fail(final.line, "run stage has no HEALTHCHECK")
	} else {
		_, rest := dfCutFlags(hc.args)
		word, cmd := dfCutSpace(rest)
		argv, isExec := dfExecForm(cmd)
		joined := strings.Join(argv, " ")
		switch {
		case strings.EqualFold(word, "NONE"):
			fail(hc.line, "HEALTHCHECK NONE: want a check of /healthz")
		case !strings.EqualFold(word, "CMD"):
			fail(hc.line, "HEALTHCHECK %s: want HEALTHCHECK [options] CMD …", hc.args)
		case !strings.Contains(joined, "/healthz"):
			fail(hc.line, "HEALTHCHECK does not check /healthz: %s", cmd)
		case noShell && (!isExec || strings.Contains(joined, "wget") || strings.Contains(joined, "curl")):
			fail(hc.line, "HEALTHCHECK %s on %s, which has no shell, wget or curl: it needs an exec-form check built into the binary (a `parley healthcheck` command)", cmd, final.from)
		case strings.Contains(joined, "curl") && strings.HasPrefix(final.from, "alpine:") && !slices.ContainsFunc(final.all("RUN"), func(in dfInstr) bool { return strings.Contains(in.args, "curl") }):
			fail(hc.line, "HEALTHCHECK uses curl, which %s does not have; use busybox wget", final.from)
		case img.port != "" && !strings.Contains(joined, "${PORT") && !strings.Contains(joined, "$PORT") && !strings.Contains(joined, ":"+img.port+"/"):
			fail(hc.line, "HEALTHCHECK does not target the listen port ($PORT, default %s): %s", img.port, cmd)
		}
	}

	var argv []string
	if in, ok := final.last("ENTRYPOINT"); ok {
		a, _ := dfExecForm(in.args)
		argv = append(argv, a...)
	}
	if in, ok := final.last("CMD"); ok {
		a, _ := dfExecForm(in.args)
		argv = append(argv, a...)
	}
	if len(argv) == 0 || argv[0] != binPath || !slices.Contains(argv, "serve") {
		fail(final.line, "ENTRYPOINT/CMD %q: want exec form running %s serve (so that SIGTERM reaches parley)", argv, binPath)
	}
	return img, errs
}

// deployLoadConfig runs the config package's own reading and validation on env.
func deployLoadConfig(env map[string]string) (config.Config, error) {
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Sample secrets of the shapes config accepts; never real.
const (
	deploySampleAPIKeys   = "sample-key-0123456789abcdef:deploy-test"
	deploySampleJWTSecret = "sample-jwt-secret-0123456789abcdef0123"
)

func TestDeployDockerfile(t *testing.T) {
	cmds, err := readmeBuildCommands(deployReadFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	img, errs := checkDockerfile(deployReadFile(t, "Dockerfile"), cmds)
	deployReport(t, "Dockerfile", errs)
	if t.Failed() {
		return
	}

	// The image's environment as Parley reads it: with a key it starts on
	// 0.0.0.0:$PORT with its data in the volume; without one it refuses.
	env := deployWithEnv(img.env, map[string]string{"PARLEY_API_KEYS": deploySampleAPIKeys})
	cfg, err := deployLoadConfig(env)
	if err != nil {
		t.Fatalf("the image's ENV plus PARLEY_API_KEYS does not pass config: %v", err)
	}
	if want := "0.0.0.0:" + img.port; cfg.Listen != want {
		t.Errorf("the image listens on %s, want %s (EXPOSE, HEALTHCHECK)", cfg.Listen, want)
	}
	if cfg.DataDir != img.dataDir {
		t.Errorf("the image keeps data in %s, want the VOLUME %s", cfg.DataDir, img.dataDir)
	}
	if _, err := deployLoadConfig(img.env); err == nil || !strings.Contains(err.Error(), "PARLEY_API_KEYS") {
		t.Errorf("the image without secrets: want config to refuse naming PARLEY_API_KEYS, got %v", err)
	}
}

// deployWithEnv returns a copy of base with over applied.
func deployWithEnv(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// deployMutate replaces the first match of the regexp old (multi-line mode)
// by repl. The match must exist, so that a mutation test cannot silently turn
// into a no-op when the file changes.
func deployMutate(t *testing.T, src, old, repl string) string {
	t.Helper()
	loc := regexp.MustCompile("(?m)" + old).FindStringIndex(src)
	if loc == nil {
		t.Fatalf("mutation no longer applies: %q matches nothing in the file; update this test", old)
	}
	return src[:loc[0]] + repl + src[loc[1]:]
}

func TestDeployDockerfileChecksCatchMistakes(t *testing.T) {
	cmds, err := readmeBuildCommands(deployReadFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	good := deployReadFile(t, "Dockerfile")
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"build command changed", `^RUN go mod download\n`, "RUN go mod download -x\n", `runs "go mod download -x", which is not a command of README.md`},
		{"build command added", `^RUN go mod download\n`, "RUN go mod download\nRUN go vet ./...\n", `runs "go vet ./...", which is not a command`},
		{"build flags changed", `-ldflags="-s -w"`, `-ldflags="-s"`, "which is not a command of README.md"},
		{"no layer caching", `^COPY go\.mod go\.sum \./\n`, "COPY . .\n", "copies . before `go mod download`"},
		{"old Go", `^FROM golang:1\.26\S* AS build`, "FROM golang:1.25 AS build", "want golang:1.26"},
		{"single stage", `^FROM alpine:\S+\n`, "", "multi-stage"},
		{"big run image", `^FROM alpine:\S+\n`, "FROM golang:1.26\n", "want a small base"},
		{"root user", `^USER \S+`, "USER root", "want a non-root user"},
		{"uid 0", `^USER \S+`, "USER 0:0", "want a non-root user"},
		{"no user", `^USER \S+\n`, "", "no USER"},
		{"no healthcheck", `^HEALTHCHECK `, "# HEALTHCHECK ", "no HEALTHCHECK"},
		{"wrong health path", `/healthz"`, `/readyz"`, "does not check /healthz"},
		{"healthcheck none", `^HEALTHCHECK `, "HEALTHCHECK NONE\n# ", "HEALTHCHECK NONE"},
		{"distroless with wget", `^FROM alpine:\S+\n`, "FROM gcr.io/distroless/static-debian12:nonroot\n", "has no shell, wget or curl"},
		{"curl on alpine", `wget -qO /dev/null`, "curl -fsS", "uses curl"},
		{"fixed listen address", `^ENV PORT=`, "ENV PARLEY_LISTEN=0.0.0.0:8080 PORT=", "leave it unset"},
		{"no port", `^ENV PORT=\S+\n`, "", "does not set ENV PORT"},
		{"port not exposed", `^EXPOSE \S+`, "EXPOSE 9090", "but EXPOSE"},
		{"auth none", `^ENV PARLEY_AUTH=token`, "ENV PARLEY_AUTH=none", "want token"},
		{"volume elsewhere", `^VOLUME \S+`, "VOLUME /var/lib/parley", "must be a volume"},
		{"relative data dir", `^ENV PARLEY_DATA_DIR=/`, "ENV PARLEY_DATA_DIR=", "want an absolute path"},
		{"shell-form entrypoint", `^ENTRYPOINT \[[^\]]*\]`, "ENTRYPOINT /usr/local/bin/parley", "want exec form"},
		{"no serve", `^CMD \["serve"\]`, `CMD ["version"]`, "want exec form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := deployMutate(t, good, tt.old, tt.new)
			_, errs := checkDockerfile(broken, cmds)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Errorf("want an error containing %q, got %q", tt.want, errs)
			}
		})
	}
	if _, err := readmeBuildCommands("# Parley\n\n## Build and deploy\n\nNo block.\n\n## Layout\n"); err == nil {
		t.Error("readmeBuildCommands: want an error for a section without a code block")
	}
}

// ---------------------------------------------------------------------------
// render.yaml content

// checkBlueprint checks the Blueprint's one service against the image and
// the config rules. It returns the problems found.
func checkBlueprint(src []byte, img deployImage) []string {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	var bp map[string]any
	if err := yaml.Unmarshal(src, &bp); err != nil {
		return []string{"not valid YAML: " + err.Error()}
	}
	services, _ := bp["services"].([]any)
	if len(services) != 1 {
		return []string{fmt.Sprintf("want exactly one service (Parley is one process for now), found %d", len(services))}
	}
	svc, ok := services[0].(map[string]any)
	if !ok {
		return []string{"services[0] is not a mapping"}
	}
	str := func(m map[string]any, k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	if v := str(svc, "type"); v != "web" {
		fail("services[0].type is %q, want web", v)
	}
	if v := str(svc, "name"); v == "" {
		fail("services[0].name is missing")
	}
	if v := str(svc, "runtime"); v != "docker" {
		fail("services[0].runtime is %q, want docker", v)
	}
	if v := str(svc, "dockerfilePath"); path.Clean(v) != "Dockerfile" {
		fail("services[0].dockerfilePath is %q, want ./Dockerfile (the one this test checks)", v)
	}
	if v := str(svc, "dockerContext"); v != "" && path.Clean(v) != "." {
		fail("services[0].dockerContext is %q, want . (the Dockerfile copies go.mod from the repository root)", v)
	}
	if v := str(svc, "healthCheckPath"); v != "/readyz" {
		fail("services[0].healthCheckPath is %q, want /readyz (200 once NATS and JetStream answer, 503 while draining)", v)
	}
	if v := str(svc, "plan"); v == "" || v == "free" {
		fail("services[0].plan is %q: a persistent disk needs a paid instance type (e.g. starter)", v)
	}
	if v, ok := svc["numInstances"]; ok && fmt.Sprint(v) != "1" {
		fail("services[0].numInstances is %v: a service with a disk runs exactly one instance", v)
	}
	if _, ok := svc["scaling"]; ok {
		fail("services[0].scaling is set: a service with a disk cannot scale (one embedded JetStream per disk)")
	}

	disk, _ := svc["disk"].(map[string]any)
	mount := str(disk, "mountPath")
	switch {
	case disk == nil:
		fail("services[0].disk is missing: the embedded JetStream needs a persistent disk, or every deploy loses the event log")
	case mount != img.dataDir:
		fail("services[0].disk.mountPath is %q, but the Dockerfile's PARLEY_DATA_DIR and VOLUME are %q", mount, img.dataDir)
	}
	if disk != nil {
		if str(disk, "name") == "" {
			fail("services[0].disk.name is missing")
		}
		if n, ok := disk["sizeGB"].(int); !ok || n < 1 {
			fail("services[0].disk.sizeGB is %v, want a whole number of GB, at least 1", disk["sizeGB"])
		}
	}

	// Environment variables.
	rawVars, _ := svc["envVars"].([]any)
	vars := map[string]map[string]any{}
	for i, raw := range rawVars {
		e, ok := raw.(map[string]any)
		if !ok {
			fail("services[0].envVars[%d] is not a mapping", i)
			continue
		}
		sources := 0
		for _, s := range []string{"value", "generateValue", "sync", "fromDatabase", "fromService", "fromGroup"} {
			if _, ok := e[s]; ok {
				sources++
			}
		}
		if sources != 1 {
			fail("services[0].envVars[%d] (%s) has %d sources; want exactly one of value, generateValue, sync: false, fromDatabase, fromService, fromGroup", i, str(e, "key"), sources)
		}
		if s, ok := e["sync"]; ok && s != false {
			fail("services[0].envVars[%d] (%s): sync is %v; the only meaningful value is false (ask for it in the Dashboard)", i, str(e, "key"), s)
		}
		if _, ok := e["fromGroup"]; ok {
			continue
		}
		k := str(e, "key")
		if k == "" {
			fail("services[0].envVars[%d] has no key", i)
			continue
		}
		if _, dup := vars[k]; dup {
			fail("services[0].envVars: %s is set twice", k)
		}
		vars[k] = e
	}
	for _, k := range []string{"PARLEY_API_KEYS", "PARLEY_JWT_SECRET"} {
		e, ok := vars[k]
		if !ok {
			fail("envVars has no %s: token auth needs it offered as a secret (sync: false)", k)
			continue
		}
		if e["sync"] != false {
			fail("envVars %s must be a secret entered in the Dashboard (sync: false), not %v", k, e)
		}
	}
	for k, e := range vars {
		up := strings.ToUpper(k)
		if _, literal := e["value"]; literal && (strings.Contains(up, "SECRET") || strings.Contains(up, "API_KEY") || strings.Contains(up, "PASSWORD")) {
			fail("envVars %s has a literal value in Git; use sync: false or generateValue", k)
		}
	}
	for _, k := range []string{"OLLAMA_HOST", "PARLEY_MODEL", "PARLEY_PROVIDER"} {
		if _, ok := vars[k]; !ok {
			fail("envVars has no %s (the model server)", k)
		}
	}
	if v := str(vars["PARLEY_AUTH"], "value"); v != "token" {
		fail("envVars PARLEY_AUTH is %q, want token: Render serves on a public address", v)
	}
	if _, ok := vars["PARLEY_LISTEN"]; ok {
		fail("envVars sets PARLEY_LISTEN: leave it unset so that Parley listens on 0.0.0.0:$PORT, the port Render routes to")
	}
	if v, ok := vars["PARLEY_DATA_DIR"]; ok && str(v, "value") != mount {
		fail("envVars PARLEY_DATA_DIR is %q, not the disk's mountPath %q", str(v, "value"), mount)
	}
	if e, ok := vars["PORT"]; ok && img.port != "" && str(e, "value") != img.port {
		fail("envVars PORT is %q, not the Dockerfile's EXPOSE/PORT %s", str(e, "value"), img.port)
	}

	// Parley's own config must accept what runs on Render: the image's ENV,
	// overridden by the Blueprint's values, Render's PORT (10000 unless the
	// Blueprint sets one) and sample values for what the Dashboard asks.
	env := deployWithEnv(img.env, map[string]string{"PORT": "10000"})
	for k, e := range vars {
		switch {
		case e["sync"] == false && k == "PARLEY_API_KEYS":
			env[k] = deploySampleAPIKeys
		case e["sync"] == false && k == "PARLEY_JWT_SECRET":
			env[k] = deploySampleJWTSecret
		case e["sync"] == false && k == "OLLAMA_HOST":
			env[k] = "http://ollama:11434"
		case e["sync"] == false || e["generateValue"] == true:
			env[k] = "sample-value-0123456789abcdef0123456789"
		case e["value"] != nil:
			env[k] = fmt.Sprint(e["value"])
		}
	}
	cfg, err := deployLoadConfig(env)
	if err != nil {
		fail("Parley's config refuses the environment on Render: %v", err)
		return errs
	}
	if want := "0.0.0.0:" + env["PORT"]; cfg.Listen != want {
		fail("on Render Parley would listen on %s, want %s (Render's PORT)", cfg.Listen, want)
	}
	if cfg.DataDir != mount {
		fail("on Render Parley would keep its data in %s, not on the disk at %s", cfg.DataDir, mount)
	}
	grace := 30 // Render's default maxShutdownDelaySeconds
	if v, ok := svc["maxShutdownDelaySeconds"].(int); ok {
		grace = v
	}
	if cfg.ShutdownTimeout.Seconds() >= float64(grace) {
		fail("PARLEY_SHUTDOWN_TIMEOUT (%s) must be shorter than maxShutdownDelaySeconds (%ds), or Render kills Parley mid-shutdown", cfg.ShutdownTimeout, grace)
	}
	return errs
}

func deployTestImage(t *testing.T) deployImage {
	t.Helper()
	cmds, err := readmeBuildCommands(deployReadFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	img, errs := checkDockerfile(deployReadFile(t, "Dockerfile"), cmds)
	if len(errs) > 0 {
		t.Fatalf("the Dockerfile has problems (see TestDeployDockerfile): %q", errs)
	}
	return img
}

func TestDeployRenderBlueprint(t *testing.T) {
	img := deployTestImage(t)
	deployReport(t, "render.yaml", checkBlueprint([]byte(deployReadFile(t, "render.yaml")), img))
}

func TestDeployRenderBlueprintChecksCatchMistakes(t *testing.T) {
	img := deployTestImage(t)
	good := deployReadFile(t, "render.yaml")
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"worker", `- type: web`, "- type: worker", "want web"},
		{"native runtime", `runtime: docker`, "runtime: go", "want docker"},
		{"other Dockerfile", `dockerfilePath: \S+`, "dockerfilePath: ./build/Dockerfile", "want ./Dockerfile"},
		{"liveness as health check", `healthCheckPath: \S+`, "healthCheckPath: /healthz", "want /readyz"},
		{"free plan", `^    plan: \S+`, "    plan: free", "paid instance type"},
		{"two instances", `numInstances: 1`, "numInstances: 2", "runs exactly one instance"},
		{"disk elsewhere", `mountPath: \S+`, "mountPath: /var/data", `PARLEY_DATA_DIR and VOLUME are "/data"`},
		{"no disk", `^    disk:\n`, "    notADisk:\n", "disk is missing"},
		{"literal API keys", `- key: PARLEY_API_KEYS\n\s+sync: false`, "- key: PARLEY_API_KEYS\n        value: k0123456789abcdef:me", "must be a secret"},
		{"synced secret", `- key: PARLEY_JWT_SECRET\n\s+sync: false`, "- key: PARLEY_JWT_SECRET\n        sync: true", "sync is true"},
		{"no auth", `- key: PARLEY_AUTH\n\s+value: token`, "- key: PARLEY_AUTH\n        value: none", "want token"},
		{"fixed listen", `^      - key: PORT\n`, "      - key: PARLEY_LISTEN\n        value: 0.0.0.0:8080\n      - key: PORT\n", "sets PARLEY_LISTEN"},
		{"wrong port", `- key: PORT\n\s+value: "?\d+"?`, "- key: PORT\n        value: \"9090\"", "not the Dockerfile's EXPOSE/PORT"},
		{"bad model server", `^      - key: OLLAMA_HOST\n\s+sync: false`, "      - key: OLLAMA_HOST\n        value: ftp://ollama", "config refuses"},
		{"no model", `^      - key: PARLEY_MODEL\n\s+value: \S+\n`, "", "no PARLEY_MODEL"},
		{"short grace", `maxShutdownDelaySeconds: \d+`, "maxShutdownDelaySeconds: 10", "must be shorter than maxShutdownDelaySeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := deployMutate(t, good, tt.old, tt.new)
			errs := checkBlueprint([]byte(broken), img)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Errorf("want an error containing %q, got %q", tt.want, errs)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// .dockerignore

// dockerignored reports whether Docker leaves name (slash-separated,
// relative to the context) out of the build context: the last pattern that
// matches it or one of its parent directories decides, "!" re-includes.
func dockerignored(patterns []string, name string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		for n := name; n != "." && n != "/"; n = path.Dir(n) {
			if ok, _ := path.Match(p, n); ok {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

func TestDeployDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(deployReadFile(t, ".dockerignore"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.Contains(l, "**") {
			t.Fatalf(".dockerignore: %q uses **, which this test does not evaluate; extend dockerignored", l)
		}
		patterns = append(patterns, l)
	}
	for _, name := range []string{"data", "data/PARLEY_EVENTS/msgs/1.blk", ".git", ".git/config"} {
		if !dockerignored(patterns, name) {
			t.Errorf(".dockerignore does not exclude %s", name)
		}
	}
	// Everything the build reads: the module files, every Go file and the
	// embedded web page.
	keep := []string{"go.mod", "go.sum", "web/index.html"}
	err := filepath.WalkDir(deployRepoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(deployRepoRoot, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "data") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			keep = append(keep, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range keep {
		if dockerignored(patterns, name) {
			t.Errorf(".dockerignore excludes %s, which the build needs", name)
		}
	}
	// The checker itself.
	if !dockerignored([]string{"docs"}, "docs/deploy.md") || dockerignored([]string{"docs", "!docs/deploy.md"}, "docs/deploy.md") ||
		dockerignored([]string{"data"}, "cmd/data") || !dockerignored([]string{"*.md"}, "README.md") {
		t.Error("dockerignored does not follow Docker's matching rules")
	}
}
