# One image for every convmeter service: `convmeter <command>` picks the role.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.work go.work.sum ./
COPY events/go.mod events/go.sum events/
COPY projections/go.mod projections/go.sum projections/
COPY services/go.mod services/go.sum services/
COPY third_party/miniredis/go.mod third_party/miniredis/go.sum third_party/miniredis/
RUN cd services && go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/convmeter ./services/cmd/convmeter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/convmeter /usr/local/bin/convmeter
ENTRYPOINT ["/usr/local/bin/convmeter"]
