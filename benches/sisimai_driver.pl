#!/usr/bin/perl
# Reference driver for benches/throughput.py: parse every message in a directory
# with Sisimai (Debian's libsisimai-perl) and print one JSON line per result, the
# same work as `bounced parse --format ndjson DIR`. Results stream out message by
# message, deliveries included; a message Sisimai dies on is counted on stderr.
use strict;
use warnings;
use JSON;
use Sisimai;
use Sisimai::Data;
use Sisimai::Mail;
use Sisimai::Message;

my $dir = shift // die "usage: $0 DIRECTORY\n";
my $mail = Sisimai::Mail->new($dir) // die "$0: cannot read $dir\n";
my $json = JSON->new->utf8;
my ($messages, $results, $errors) = (0, 0, 0);

while (my $raw = $mail->data->read) {
    $messages++;
    my $ok = eval {
        if (my $mesg = Sisimai::Message->new('data' => $raw)) {
            my $rows = Sisimai::Data->make('data' => $mesg, 'delivered' => 1, 'origin' => $mail->data->path);
            for my $row (@$rows) {
                print $json->encode($row->damn), "\n";
                $results++;
            }
        }
        1;
    };
    $errors++ unless $ok;
}
printf STDERR "sisimai %s: %d messages, %d results, %d errors\n", Sisimai->version, $messages, $results, $errors;
