// grpc-go peer: ConnectService served by a plain grpc.NewServer() with its
// defaults, plaintext, on the address given as the first argument.
package main

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "connectpeer/pb"
)

type server struct {
	pb.UnimplementedConnectServiceServer
}

func hello(s string) *pb.ResponseMessage {
	return &pb.ResponseMessage{ResponseData: "Hello, " + s}
}

func (server) UnaryRPC(_ context.Context, req *pb.RequestMessage) (*pb.ResponseMessage, error) {
	return hello(req.GetRequestData()), nil
}

func (server) ServerStreamRPC(req *pb.RequestMessage, stream pb.ConnectService_ServerStreamRPCServer) error {
	n := req.GetCount()
	if n == 0 {
		n = 10
	}
	interval := time.Duration(req.GetIntervalMs()) * time.Millisecond
	for i := uint32(1); i <= n; i++ {
		if i > 1 && interval > 0 {
			select {
			case <-time.After(interval):
			case <-stream.Context().Done():
				return status.FromContextError(stream.Context().Err()).Err()
			}
		}
		msg := hello(req.GetRequestData() + ": server(" + strconv.FormatUint(uint64(i), 10) + ") ")
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

func (server) ClientStreamRPC(stream pb.ConnectService_ClientStreamRPCServer) error {
	var parts []string
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(hello(strings.Join(parts, ", ")))
		}
		if err != nil {
			return err
		}
		parts = append(parts, req.GetRequestData())
	}
}

func (server) BidiStreamRPC(stream pb.ConnectService_BidiStreamRPCServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(hello(req.GetRequestData())); err != nil {
			return err
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		log.Fatalf("usage: %s HOST:PORT", os.Args[0])
	}
	lis, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatalf("listen %s: %v", os.Args[1], err)
	}
	s := grpc.NewServer()
	pb.RegisterConnectServiceServer(s, server{})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()

	log.Printf("grpc-go peer listening on %s", lis.Addr())
	if err := s.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
