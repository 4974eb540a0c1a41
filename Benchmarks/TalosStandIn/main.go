// talos-standin: a Talos node's EtcdSnapshot as a real node serves it, for benchmarks.
//
// Talos' apid and machined are Go programs on grpc-go; they stream an etcd snapshot as
// common.Data messages of 1,024 bytes (machined's pkg/chunker/stream). This program does the
// same with grpc-go over mutual TLS with Ed25519 certificates, from a snapshot file, so the
// Swift client is measured against the server it meets in production rather than against
// the Swift test server (which spends as much per message as the client). It also carries
// the reference client: grpc-go receiving the stream and writing it to a file, the way
// talosctl's library does (a goroutine copying message bytes into an io.Pipe, io.Copy into
// the file).
//
// No protoc: a codec registered under grpc-go's "proto" name passes pre-encoded messages
// through, and the two messages involved are encoded and decoded by hand (common.Data:
// field 1 metadata, field 2 bytes). Build with scripts/build-talos-standin (Go 1.19 and
// grpc-go 1.33 from Debian, GOPATH mode).
//
//	talos-standin serve -pki-dir DIR -snapshot FILE [-message-bytes 1024]
//	talos-standin fetch -pki-dir DIR -output FILE
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
)

// rawCodec replaces the protobuf codec: messages are already-encoded bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

func init() { encoding.RegisterCodec(rawCodec{}) }

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: talos-standin serve|fetch ..."))
	}
	switch os.Args[1] {
	case "serve":
		fail(serve(os.Args[2:]))
	case "fetch":
		fail(fetch(os.Args[2:]))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "talos-standin:", err)
		os.Exit(1)
	}
}

// cpuSeconds is the user and system CPU time this process has used.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

// ---- the server ----

type machineServer struct {
	snapshot     string
	messageBytes int
}

var machineService = grpc.ServiceDesc{
	ServiceName: "machine.MachineService",
	HandlerType: (*interface{})(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "EtcdSnapshot",
		ServerStreams: true,
		Handler: func(srv interface{}, stream grpc.ServerStream) error {
			return srv.(*machineServer).etcdSnapshot(stream)
		},
	}},
}

// etcdSnapshot sends the snapshot file in messages of messageBytes, each a freshly encoded
// common.Data as machined's proto.Marshal would make it (grpc-go keeps a reference to what it
// is given until the frame is written, so no buffer is reused).
func (s *machineServer) etcdSnapshot(stream grpc.ServerStream) error {
	var request []byte
	if err := stream.RecvMsg(&request); err != nil {
		return err
	}
	file, err := os.Open(s.snapshot)
	if err != nil {
		return err
	}
	defer file.Close()
	start, cpu := time.Now(), cpuSeconds()
	chunk := make([]byte, s.messageBytes)
	messages, total := 0, 0
	for {
		n, err := io.ReadFull(file, chunk)
		if n > 0 {
			message := encodeData(chunk[:n])
			if err := stream.SendMsg(&message); err != nil {
				return err
			}
			messages++
			total += n
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	elapsed, used := time.Since(start).Seconds(), cpuSeconds()-cpu
	fmt.Printf("served %d bytes in %d messages in %.2f s: server CPU %.2f µs per message\n",
		total, messages, elapsed, used*1e6/float64(messages))
	return nil
}

// encodeData is common.Data{bytes: chunk}: field 2, length-delimited.
func encodeData(chunk []byte) []byte {
	message := make([]byte, 0, len(chunk)+1+binaryVarintLength(uint64(len(chunk))))
	message = append(message, 0x12)
	message = appendVarint(message, uint64(len(chunk)))
	return append(message, chunk...)
}

func binaryVarintLength(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func serve(args []string) error {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	pkiDir := flags.String("pki-dir", "", "directory for ca.crt, the client's files and etcd-backup.talosconfig")
	snapshot := flags.String("snapshot", "", "snapshot file to serve")
	messageBytes := flags.Int("message-bytes", 1024, "bytes per common.Data message (Talos: 1024)")
	flags.Parse(args)
	if *pkiDir == "" || *snapshot == "" || *messageBytes < 1 {
		return errors.New("serve needs -pki-dir, -snapshot and a positive -message-bytes")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	serverTLS, err := writePKI(*pkiDir, listener.Addr().String())
	if err != nil {
		return err
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)))
	server.RegisterService(&machineService, &machineServer{snapshot: *snapshot, messageBytes: *messageBytes})
	fmt.Printf("listening on %s\n", listener.Addr())
	return server.Serve(listener)
}

// ---- the PKI: an Ed25519 CA, a server certificate for 127.0.0.1, a client certificate of
// role os:etcd:backup, as Talos issues them ----

func certificate(template, parent *x509.Certificate, public ed25519.PublicKey, signer ed25519.PrivateKey) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, template, parent, public, signer)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := x509.ParseCertificate(der)
	return parsed, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), err
}

func keyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), err
}

func writePKI(dir, address string) (*tls.Config, error) {
	now := time.Now()
	caPublic, caKey, _ := ed25519.GenerateKey(rand.Reader)
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"talos"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	ca, caPEM, err := certificate(caTemplate, caTemplate, caPublic, caKey)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, []byte, tls.Certificate, error) {
		public, key, _ := ed25519.GenerateKey(rand.Reader)
		template := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{name}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		_, certPEM, err := certificate(template, ca, public, caKey)
		if err != nil {
			return nil, nil, tls.Certificate{}, err
		}
		privatePEM, err := keyPEM(key)
		if err != nil {
			return nil, nil, tls.Certificate{}, err
		}
		pair, err := tls.X509KeyPair(certPEM, privatePEM)
		return certPEM, privatePEM, pair, err
	}
	_, _, serverPair, err := leaf(2, "talos", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	clientPEM, clientKeyPEM, _, err := leaf(3, "os:etcd:backup", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	b64 := base64.StdEncoding.EncodeToString
	talosconfig := fmt.Sprintf("context: standin\ncontexts:\n  standin:\n    endpoints:\n      - %q\n    ca: %s\n    crt: %s\n    key: %s\n",
		address, b64(caPEM), b64(clientPEM), b64(clientKeyPEM))
	files := map[string][]byte{"ca.crt": caPEM, "client.crt": clientPEM, "client.key": clientKeyPEM, "address": []byte(address)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	// Written last, whole (a rename): scripts wait for it.
	temporary := filepath.Join(dir, ".etcd-backup.talosconfig")
	if err := os.WriteFile(temporary, []byte(talosconfig), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(temporary, filepath.Join(dir, "etcd-backup.talosconfig")); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
}

// ---- the reference client ----

// decodeData returns field 2 (bytes) of a common.Data message, and the error string of its
// metadata (field 1, whose field 2 is the error) when there is one.
func decodeData(message []byte) ([]byte, error) {
	var data []byte
	for len(message) > 0 {
		tag, n := readVarint(message)
		if n == 0 {
			return nil, errors.New("bad tag")
		}
		message = message[n:]
		if tag&7 != 2 {
			return nil, fmt.Errorf("unexpected wire type in tag %d", tag)
		}
		length, n := readVarint(message)
		if n == 0 || uint64(len(message)-n) < length {
			return nil, errors.New("truncated field")
		}
		field := message[n : n+int(length)]
		message = message[n+int(length):]
		switch tag >> 3 {
		case 1:
			if len(field) > 0 {
				return nil, errors.New("a message carries metadata (an error from the node)")
			}
		case 2:
			data = field
		}
	}
	return data, nil
}

func readVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func fetch(args []string) error {
	flags := flag.NewFlagSet("fetch", flag.ExitOnError)
	pkiDir := flags.String("pki-dir", "", "directory serve wrote its files into")
	output := flags.String("output", "", "file to write the snapshot to")
	flags.Parse(args)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(*pkiDir, name))
		fail(err)
		return data
	}
	pair, err := tls.X509KeyPair(read("client.crt"), read("client.key"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(read("ca.crt"))
	clientTLS := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	connection, err := grpc.DialContext(ctx, string(read("address")), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		return err
	}
	defer connection.Close()
	file, err := os.OpenFile(*output, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer file.Close()

	start, cpu := time.Now(), cpuSeconds()
	stream, err := connection.NewStream(ctx, &machineService.Streams[0], "/machine.MachineService/EtcdSnapshot")
	if err != nil {
		return err
	}
	request := []byte{}
	if err := stream.SendMsg(&request); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	// As talosctl's library reads a byte stream: a goroutine receives messages and writes their
	// bytes into a pipe; the command copies the pipe into the file.
	reader, writer := io.Pipe()
	messages := 0
	go func() {
		for {
			var message []byte
			err := stream.RecvMsg(&message)
			if err == io.EOF {
				writer.Close()
				return
			}
			if err != nil {
				writer.CloseWithError(err)
				return
			}
			data, err := decodeData(message)
			if err != nil {
				writer.CloseWithError(err)
				return
			}
			messages++
			if _, err := writer.Write(data); err != nil {
				return
			}
		}
	}()
	total, err := io.Copy(file, reader)
	if err != nil {
		return err
	}
	elapsed, used := time.Since(start).Seconds(), cpuSeconds()-cpu
	fmt.Printf("grpc-go client: %d bytes in %d messages in %.2f s = %.1f MiB/s, client CPU %.2f µs per message\n",
		total, messages, elapsed, float64(total)/1048576/elapsed, used*1e6/float64(messages))
	return nil
}
