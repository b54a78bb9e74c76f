package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3 is a Store of the objects in one bucket of an S3-compatible server
// (AWS S3, MinIO, VersityGW, ...), through minio-go: object "a/b" is key
// "a/b". Put is one PutObject (multipart for large objects), which S3
// makes visible atomically. Keys that ValidName refuses (such as "a//b"
// or directory markers ending in "/") are not listed.
//
// NoSuchKey becomes an error wrapping ErrNotFound, as does NoSuchBucket
// (with the bucket named in the message); AccessDenied and other
// refused credentials wrap ErrAuth; failures to connect wrap
// ErrUnreachable. Requests are retried at most twice, so an unreachable
// endpoint fails within seconds; ctx bounds every call.
type S3 struct {
	client *minio.Client
	bucket string
	uri    string // "s3://bucket" for messages
}

// NewS3 returns the S3 store of bucket on endpoint: "host:port" or an
// http:// or https:// URL; "" means opts.S3Endpoint, and when that is
// empty too, AWS (s3.amazonaws.com). A bare host:port speaks HTTPS
// unless opts.S3Insecure is set. opts gives the credentials (none means
// anonymous), the region (default us-east-1 on non-AWS endpoints) and
// the HTTP client whose Transport to use; nil opts means
// OptionsFromEnv().
//
// NewS3 checks that the bucket exists: it returns an error wrapping
// ErrUnreachable when the endpoint does not answer and ErrNotFound when
// the bucket does not exist. Credentials that may read objects but not
// the bucket itself are accepted.
func NewS3(ctx context.Context, endpoint, bucket string, opts *Options) (*S3, error) {
	opts = orEnv(opts)
	uri := "s3://" + bucket
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return nil, fmt.Errorf("store: %s: %w: %v", uri, ErrBadName, err)
	}
	if endpoint == "" {
		endpoint = opts.S3Endpoint
	}
	host, secure, err := parseS3Endpoint(endpoint, opts.S3Insecure)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", uri, err)
	}
	region := opts.S3Region
	if region == "" && !strings.HasSuffix(host, "amazonaws.com") {
		region = "us-east-1"
	}
	var transport http.RoundTripper
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		transport = opts.HTTPClient.Transport
	} else {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", uri, err)
		}
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = 60 * time.Second
		transport = t
	}
	client, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(opts.S3AccessKey, opts.S3SecretKey, ""),
		Secure:     secure,
		Region:     region,
		Transport:  transport,
		MaxRetries: 3, // the first try and two retries
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", uri, err)
	}
	s := &S3{client: client, bucket: bucket, uri: uri}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		err = s.fail("", err)
		if !errors.Is(err, ErrAuth) {
			return nil, err
		}
	} else if !ok {
		return nil, fmt.Errorf("store: %s: %w: bucket %q does not exist on %s", uri, ErrNotFound, bucket, host)
	}
	return s, nil
}

// parseS3Endpoint splits an endpoint into host:port and whether to use
// TLS.
func parseS3Endpoint(endpoint string, insecure bool) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(endpoint, "://") {
		return endpoint, !insecure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("%w: S3 endpoint: %v", ErrBadName, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", false, fmt.Errorf("%w: S3 endpoint %q is not http(s)://host[:port]", ErrBadName, endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// String returns "s3://bucket".
func (s *S3) String() string { return s.uri }

// Bucket returns the bucket's name.
func (s *S3) Bucket() string { return s.bucket }

// fail maps a minio-go error about the named object to the sentinels.
func (s *S3) fail(name string, err error) error {
	where := s.uri
	if name != "" {
		where += "/" + name
	}
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("store: %s: %w: %w", where, ErrUnreachable, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("store: %s: %w: bucket %q does not exist", where, ErrNotFound, s.bucket)
	case resp.Code == "NoSuchKey", resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("store: %s: %w", where, ErrNotFound)
	case resp.Code == "AccessDenied", resp.Code == "InvalidAccessKeyId", resp.Code == "SignatureDoesNotMatch",
		resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("store: %s: %w: %v", where, ErrAuth, err)
	}
	return fmt.Errorf("store: %s: %w", where, err)
}

// Get downloads the object with one GET request; the body must have the
// object's size.
func (s *S3) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail(name, err)
	}
	return readCloser{&httpBody{r: newExactReader(body, info.Size), where: s.uri + "/" + name}, body}, nil
}

// Put uploads the object with PutObject; size -1 uploads in parts of
// unknown count.
func (s *S3) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s/%s: %w", s.uri, name, err)
	}
	g := &guardReader{r: newExactReader(r, size)}
	if size == 0 { // minio-go will not read an empty body: check it is one
		if _, err := io.ReadAll(g); err != nil {
			return fmt.Errorf("store: %s/%s: put: %w", s.uri, name, err)
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, name, g, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// An empty object goes unsigned rather than as a streamed
		// (aws-chunked) body: after a streamed upload of zero bytes
		// some servers (VersityGW 1.8) leave the final chunk unread on
		// the connection and fail the next request sent on it.
		DisableContentSha256: size == 0,
	})
	readErr := g.detach()
	if err != nil {
		if readErr != nil {
			// The upload failed because of the reader; say so
			// rather than how the server took the aborted request.
			return fmt.Errorf("store: %s/%s: put: %w", s.uri, name, readErr)
		}
		return s.fail(name, err)
	}
	return nil
}

// Stat sends HEAD for the object.
func (s *S3) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ValidName(name); err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.fail(name, err)
	}
	return ObjectInfo{Name: name, Size: info.Size, ModTime: info.LastModified, ETag: info.ETag}, nil
}

// List lists the keys starting with prefix (ListObjectsV2, recursive).
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: list %s: %w", s.uri, prefix, err)
	}
	var out []ObjectInfo
	for o := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.fail(prefix, o.Err)
		}
		if ValidName(o.Key) != nil {
			continue
		}
		out = append(out, ObjectInfo{Name: o.Key, Size: o.Size, ModTime: o.LastModified, ETag: o.ETag})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: list %s: %w", s.uri, prefix, err)
	}
	sortInfos(out)
	return out, nil
}

// Delete removes the object. S3 deletes of missing keys succeed, so
// Delete first checks that the object exists; a concurrent Delete of the
// same object may make both succeed.
func (s *S3) Delete(ctx context.Context, name string) error {
	if _, err := s.Stat(ctx, name); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return s.fail(name, err)
	}
	return nil
}
