package auth

import "strings"

// Rule says who may call one gRPC method.
type Rule struct {
	Roles []Role
	// Tenant: the request's tenant_id must be one the caller holds (a
	// fleet member or admin holds all; a request without a tenant, id 0,
	// needs all).
	Tenant bool
	// Open: anyone, authenticated or not (health checks).
	Open bool
}

// policy is the table of every method of every TiStream API: a method not
// in it is refused, so a new RPC is closed until someone writes its rule.
var policy = map[string]Rule{
	// The public API: readers of the tenant, and admins.
	"/tistream.api.v1.TiStreamService/PullTable":  {Roles: []Role{RoleReader, RoleAdmin}, Tenant: true},
	"/tistream.api.v1.TiStreamService/PullDB":     {Roles: []Role{RoleReader, RoleAdmin}, Tenant: true},
	"/tistream.api.v1.TiStreamService/PullTenant": {Roles: []Role{RoleReader, RoleAdmin}, Tenant: true},
	"/tistream.api.v1.TiStreamService/ListDBs":    {Roles: []Role{RoleReader, RoleAdmin}, Tenant: true},
	"/tistream.api.v1.TiStreamService/ListTables": {Roles: []Role{RoleReader, RoleAdmin}, Tenant: true},

	// The meta-server: producers register their tenant and notify their
	// files; operating the fleet is for admins.
	"/tistream.meta.v1.MetaService/RegisterTenant":   {Roles: []Role{RoleUpstream, RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/NotifyStoreFile":  {Roles: []Role{RoleUpstream, RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/ListTenants":      {Roles: []Role{RoleAdmin}},
	"/tistream.meta.v1.MetaService/ListTasks":        {Roles: []Role{RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/SplitRange":       {Roles: []Role{RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/MergeRanges":      {Roles: []Role{RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/DrainWorker":      {Roles: []Role{RoleAdmin}},
	"/tistream.meta.v1.MetaService/UpdateTenant":     {Roles: []Role{RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/DeregisterTenant": {Roles: []Role{RoleAdmin}, Tenant: true},
	"/tistream.meta.v1.MetaService/GetUsage":         {Roles: []Role{RoleAdmin}, Tenant: true},

	// Internal APIs: only the fleet member that calls them.
	"/tistream.sorter.v1.SorterService/Ingest":                   {Roles: []Role{RoleDispatcher}},
	"/tistream.dispatcher.v1.DispatcherService/Notify":           {Roles: []Role{RoleMetaServer}},
	"/tistream.schema.v1.SchemaRegistryService/GetTableSchema":   {Roles: []Role{RoleAPIServer, RoleAdmin}},
	"/tistream.schema.v1.SchemaRegistryService/ListDBs":          {Roles: []Role{RoleAPIServer, RoleAdmin}},
	"/tistream.schema.v1.SchemaRegistryService/ListTables":       {Roles: []Role{RoleAPIServer, RoleAdmin}},
	"/tistream.schema.v1.SchemaRegistryService/GetSchemaChanges": {Roles: []Role{RoleAPIServer, RoleAdmin}},
}

// ruleFor finds the rule of a full method name.
func ruleFor(method string) (Rule, bool) {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return Rule{Open: true}, true
	}
	r, ok := policy[method]
	return r, ok
}

// Methods lists the methods the policy names (for the tests that check
// every RPC of every service has a rule).
func Methods() []string {
	out := make([]string, 0, len(policy))
	for m := range policy {
		out = append(out, m)
	}
	return out
}
