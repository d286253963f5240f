module github.com/convmeter/convmeter/events

go 1.26
