// Package imagewire is the seam between berthd's image service (package
// registry) and the copies containers/image makes for it (package
// registry/transfer), which run in a helper process, berth-imagecopy, one
// per operation: a pull, push, load, save or login parses what registries
// and archives send, and containers/image with its signature, encryption
// and registry clients stays out of berthd's memory. Both sides import
// this package; it imports no containers/image.
//
// The helper reads the operation's Requests (JSON) on stdin, one after the
// other, and answers each with Lines (JSON, one per line) on stdout:
// progress messages as they come, then one Result or one Error. It exits
// at the end of its input.
package imagewire

import (
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Ops.
const (
	OpRemote       = "remote"        // Ref's manifest: Result.Remote
	OpPull         = "pull"          // Ref into Dest; progress; Result.ImageID
	OpPush         = "push"          // stored image SourceID to Ref; progress; Result.Manifest*
	OpListArchive  = "list-archive"  // Archive's images: Result.Items
	OpLoad         = "load"          // Archive item Item into Dest; progress unless Quiet
	OpImportLayout = "import-layout" // the one image of the OCI layout Dir, untagged: Result.ImageID
	OpSave         = "save"          // Images into a docker-archive at Path
	OpLogin        = "login"         // check Username/Password against Host
)

// Archive formats.
const (
	DockerArchive = "docker-archive"
	OCIArchive    = "oci-archive"
)

// Store is where the image store is (go.podman.io/storage options).
type Store struct {
	GraphRoot, RunRoot, Driver string
}

// System is containers/image's configuration: berth's own files, never
// the host's /etc/containers.
type System struct {
	RegistriesConf    string // registries.conf (mirrors)
	RegistriesConfDir string
	RegistriesDir     string // registries.d
	BlobInfoCacheDir  string
	TmpDir            string // big temporary files
	AuthFile          string // a ~/.docker/config.json for requests without credentials
	UserAgent         string
}

// Registry is how to reach the registry of a request's Ref.
type Registry struct {
	Insecure bool // plain HTTP or no TLS verification
	// credentials from the request (X-Registry-Auth); none: the AuthFile's
	Username, Password, IdentityToken, RegistryToken string
	// Platform chosen by a pull: os[/arch[/variant]] parts, "" for the daemon's
	OS, Arch, Variant string
}

// Item is one image of an archive.
type Item struct {
	Format  string // DockerArchive or OCIArchive
	Path    string
	Index   int    // docker-archive: the image's index in manifest.json
	RefName string // oci-archive: the manifest's org.opencontainers.image.ref.name ("": the only one)
}

// SaveImage is one image of a save and the tags it is written with.
type SaveImage struct {
	ID   string
	Tags []string // fully qualified, "docker.io/library/busybox:latest"
}

// Request is one operation.
type Request struct {
	Op       string
	Store    Store
	System   System
	Registry Registry
	// Ref is a fully qualified reference ("docker.io/library/busybox:latest");
	// Familiar is how errors name it ("busybox:latest").
	Ref, Familiar string
	// DestName (a fully qualified reference, "" for none) and DestID (the
	// image ID it must get, "" to let storage choose) of a pull or load.
	DestName, DestID string
	SourceID         string // push: the stored image
	Archive          Archive
	Item             Item
	Dir              string // import-layout
	Path             string // save
	Images           []SaveImage
	Quiet            bool
	Platforms        bool   // remote: list the platforms a single-platform image's config names too
	Host             string // login
	Username         string
	Password         string
}

// Archive is an archive to list.
type Archive struct {
	Format string
	Path   string
	Index  []byte // oci-archive: its index.json
}

// Remote is what a registry says of a reference.
type Remote struct {
	Top    digest.Digest   // the top-level manifest's digest
	Layers []digest.Digest // of the instance for the platform
	Config digest.Digest   // its config's: the image ID ("" for schema 1)
	// Descriptor of the top-level manifest and the platforms it offers
	// (GET /distribution/{name}/json)
	Descriptor ocispec.Descriptor
	Platforms  []ocispec.Platform
}

// ArchiveImage is an image an archive holds.
type ArchiveImage struct {
	Item   Item
	Names  []string // tags, fully qualified
	Config digest.Digest
}

// Result ends a successful operation.
type Result struct {
	Remote         *Remote        `json:",omitempty"`
	ImageID        string         `json:",omitempty"`
	ManifestDigest digest.Digest  `json:",omitempty"`
	ManifestSize   int            `json:",omitempty"`
	Items          []ArchiveImage `json:",omitempty"`
}

// Error ends a failed one: the HTTP status of its errdefs class
// (engine/httpstatus) and Docker's message.
type Error struct {
	Status  int
	Message string
}

// Line is one line of the helper's output.
type Line struct {
	Progress *jsonstream.Message `json:",omitempty"`
	Result   *Result             `json:",omitempty"`
	Error    *Error              `json:",omitempty"`
}

// ShortID is an ID's or digest's first 12 hex digits, as Docker shows
// image and layer IDs.
func ShortID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
