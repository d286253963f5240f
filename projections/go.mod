module github.com/convmeter/convmeter/projections

go 1.26
