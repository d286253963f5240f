// Package projections holds what the projection consumers share: the Batch a consumer hands to a
// projection and the Projection port every projection implements. The billing and ratelimit
// subpackages each provide a pure apply function over output events and a Redis store.
package projections
