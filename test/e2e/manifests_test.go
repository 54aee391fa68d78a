package e2e

// Manifests the flows use. NAMESPACE is replaced by the client's namespace
// (kubectl.file).

// namespaceDoc is the client's Namespace.
const namespaceDoc = `apiVersion: v1
kind: Namespace
metadata:
  name: NAMESPACE
`

// webDeployment is a two-container Deployment. The container list is
// keyed by name, which the strategic-merge tests rely on.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NAMESPACE
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "3600"]
`

const webService = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: NAMESPACE
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 80
`

const webConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: NAMESPACE
data:
  greeting: hello
  mode: test
`

// webSecretStringData is a Secret written with stringData, which the
// server folds into data.
const webSecretStringData = `apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: NAMESPACE
stringData:
  user: admin
  password: s3cr3t
`

// webSecretData is the same Secret written with base64 data
// (admin / s3cr3t).
const webSecretData = `apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: NAMESPACE
data:
  user: YWRtaW4=
  password: czNjcjN0
`

// soloPod is a bare Pod; nothing schedules it, so it stays Pending.
const soloPod = `apiVersion: v1
kind: Pod
metadata:
  name: solo
  namespace: NAMESPACE
  labels:
    app: solo
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
`

// docs joins YAML documents into one multi-document stream.
func docs(parts ...string) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += "---\n"
		}
		s += p
	}
	return s
}
