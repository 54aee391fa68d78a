package apiserver

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Media types the server speaks.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// maxBodyBytes caps request bodies, as kube-apiserver does (3 MiB).
const maxBodyBytes = 3 << 20

// scheme knows every type the server reads or writes: the k8s.io/api
// groups, the meta.k8s.io types (Table, PartialObjectMetadata) and Status.
var scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // the static type tables of k8s.io/api cannot fail to register
	}
	metav1.AddMetaToScheme(s)
	return s
}

var (
	jsonCodec       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{})
	jsonStrictCodec = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Strict: true})
	yamlCodec       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true})
	yamlStrictCodec = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	protoCodec      = protobuf.NewSerializer(scheme, scheme)
	protoStream     = protobuf.NewRawSerializer(scheme, scheme)
)

// output is how a response is to be written, from the Accept header.
type output struct {
	media string // mediaJSON, mediaYAML or mediaProtobuf
	// as is "Table", "PartialObjectMetadata" or "PartialObjectMetadataList"
	// when the client asked for a meta.k8s.io transformation.
	as string
	// pretty asks for indented JSON.
	pretty bool
}

// negotiate picks the response form from the Accept header. Clients list
// several; the first one the server can produce wins.
func negotiate(r *http.Request) (output, error) {
	accept := r.Header.Get("Accept")
	pretty := r.URL.Query().Get("pretty") == "true"
	if accept == "" {
		return output{media: mediaJSON, pretty: pretty}, nil
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		var media string
		switch mt {
		case "application/json", "application/*", "*/*", "application/json;stream=watch":
			media = mediaJSON
		case "application/yaml":
			media = mediaYAML
		case mediaProtobuf:
			media = mediaProtobuf
		default:
			continue
		}
		as := params["as"]
		if as != "" {
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			switch as {
			case "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
			default:
				continue
			}
			// Tables are JSON only; metadata forms are JSON or protobuf.
			if media == mediaYAML || (as == "Table" && media == mediaProtobuf) {
				continue
			}
		}
		return output{media: media, as: as, pretty: pretty}, nil
	}
	return output{}, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "",
		fmt.Sprintf("only the following media types are accepted: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf), 0, false)
}

// encode writes obj in the negotiated media type. Objects must carry their
// apiVersion and kind.
func encode(w io.Writer, media string, pretty bool, obj runtime.Object) error {
	switch media {
	case mediaYAML:
		return yamlCodec.Encode(obj, w)
	case mediaProtobuf:
		return protoCodec.Encode(obj, w)
	default:
		if pretty {
			var buf bytes.Buffer
			if err := jsonCodec.Encode(obj, &buf); err != nil {
				return err
			}
			var out bytes.Buffer
			if err := jsonIndent(&out, buf.Bytes()); err != nil {
				return err
			}
			_, err := w.Write(out.Bytes())
			return err
		}
		return jsonCodec.Encode(obj, w)
	}
}

// writeObject answers with obj and the given status code.
func writeObject(w http.ResponseWriter, out output, code int, obj runtime.Object) {
	if err := setKind(obj); err != nil {
		writeError(w, out, apierrors.NewInternalError(err))
		return
	}
	var buf bytes.Buffer
	if err := encode(&buf, out.media, out.pretty, obj); err != nil {
		writeError(w, out, apierrors.NewInternalError(fmt.Errorf("encoding response: %w", err)))
		return
	}
	ct := out.media
	if out.as != "" {
		ct = fmt.Sprintf("%s;as=%s;v=v1;g=meta.k8s.io", out.media, out.as)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers with a Kubernetes Status for err.
func writeError(w http.ResponseWriter, out output, err error) {
	st := statusFor(err)
	st.SetGroupVersionKind(statusKind)
	media := out.media
	if media == "" || media == mediaYAML {
		media = mediaJSON
	}
	var buf bytes.Buffer
	if err := encode(&buf, media, false, st); err != nil {
		http.Error(w, st.Message, int(st.Code))
		return
	}
	w.Header().Set("Content-Type", media)
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(buf.Bytes())
}

// statusKind is how kube-apiserver labels Status bodies: apiVersion v1.
var statusKind = schema.GroupVersionKind{Version: "v1", Kind: "Status"}

// statusFor turns any error into a Status; errors that are not API errors
// become 500s.
func statusFor(err error) *metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		if st.Status == "" {
			st.Status = metav1.StatusFailure
		}
		return &st
	}
	st := apierrors.NewInternalError(err).Status()
	return &st
}

// setKind stamps obj with its apiVersion and kind from the scheme, unless it
// already has them.
func setKind(obj runtime.Object) error {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return nil
	}
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		return fmt.Errorf("no kind for %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	return nil
}

// readBody reads a request body, refusing oversized ones with 413.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBodyBytes))
	}
	return data, nil
}

// decodeInto decodes a request body of the given content type into into.
// With strict, unknown and duplicate fields are reported as warnings (the
// returned strings), or as an error when the directive is Strict.
func decodeInto(contentType string, body []byte, into runtime.Object, directive string) (warnings []string, err error) {
	mt, _, perr := mime.ParseMediaType(contentType)
	if contentType == "" || perr != nil {
		mt = mediaJSON
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	var dec runtime.Decoder
	strict := directive == metav1.FieldValidationStrict || directive == metav1.FieldValidationWarn
	switch mt {
	case mediaJSON:
		dec = jsonCodec
		if strict {
			dec = jsonStrictCodec
		}
	case mediaYAML, "application/x-yaml", "text/yaml":
		dec = yamlCodec
		if strict {
			dec = yamlStrictCodec
		}
	case mediaProtobuf:
		dec = protoCodec
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf), 0, false)
	}
	want := into.GetObjectKind().GroupVersionKind()
	_, gvk, derr := dec.Decode(body, &want, into)
	if derr != nil {
		if sde, ok := runtime.AsStrictDecodingError(derr); ok {
			if directive == metav1.FieldValidationStrict {
				return nil, apierrors.NewBadRequest(derr.Error())
			}
			for _, e := range sde.Errors() {
				warnings = append(warnings, e.Error())
			}
			return warnings, nil
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized or malformed: %v", derr))
	}
	if gvk != nil && !want.Empty() && (gvk.Kind != want.Kind || gvk.GroupVersion() != want.GroupVersion()) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", gvk.GroupVersion(), want.GroupVersion()))
	}
	return warnings, nil
}

// jsonIndent indents compact JSON.
func jsonIndent(dst *bytes.Buffer, src []byte) error {
	return stdjson.Indent(dst, bytes.TrimSpace(src), "", "  ")
}

// notAcceptable is a 406 for a form the server does not produce.
func notAcceptable(msg string) error {
	return apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", msg, 0, false)
}

// protoMessage is a generated k8s.io type that unmarshals itself.
type protoMessage interface{ Unmarshal([]byte) error }

// decodeLoose reads a body into into by its fields alone, whatever
// apiVersion it names: for option-like types (DeleteOptions, Eviction) that
// clients send under many group versions. JSON, YAML and protobuf bodies
// are understood.
func decodeLoose(contentType string, body []byte, into protoMessage) error {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == mediaProtobuf {
		raw := body
		if bytes.HasPrefix(raw, protobufMagic) {
			var u runtime.Unknown
			if err := u.Unmarshal(raw[len(protobufMagic):]); err != nil {
				return apierrors.NewBadRequest(fmt.Sprintf("the protobuf body is malformed: %v", err))
			}
			raw = u.Raw
		}
		if err := into.Unmarshal(raw); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("the protobuf body is malformed: %v", err))
		}
		return nil
	}
	js := bytes.TrimSpace(body)
	if len(js) == 0 || (js[0] != '{' && js[0] != '[') {
		var err error
		if js, err = yaml.YAMLToJSON(body); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("the body is not valid JSON or YAML: %v", err))
		}
	}
	if err := stdjson.Unmarshal(js, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body is malformed: %v", err))
	}
	return nil
}

// protobufMagic starts every Kubernetes protobuf envelope.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}
