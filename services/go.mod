module github.com/convmeter/convmeter/services

go 1.26
