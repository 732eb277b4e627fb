//! How replicas share the clusters' watches: each holds at most its fair share (the enabled
//! clusters divided by the replicas running now, as their heartbeats say, never more than its
//! cap), keeps what it already holds first, takes free clusters up to that share, and lets go of
//! what is beyond it so a replica that just started gets work. Pure: the keeper applies the plan.

use std::collections::BTreeSet;

/// One cluster's lease as stored: who holds it and until when (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub cluster_id: String,
    pub holder: String,
    pub until_ms: i64,
}

/// What this replica does with the leases this round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Clusters it holds and keeps (renew).
    pub keep: Vec<String>,
    /// Free clusters it tries to take (another replica may win the race).
    pub take: Vec<String>,
    /// Clusters it holds beyond its share: let go, for another replica to take.
    pub release: Vec<String>,
}

/// The plan for replica `me` at `now_ms`, over the `enabled` clusters (in the order they are
/// taken), the stored `leases`, the `replicas` running now (by their heartbeats), and at most
/// `cap` clusters per replica.
pub fn plan(
    enabled: &[String],
    leases: &[Lease],
    replicas: &[String],
    me: &str,
    now_ms: i64,
    cap: usize,
) -> Claims {
    let live = |l: &&Lease| !l.holder.is_empty() && l.until_ms >= now_ms;
    // Every replica running, and any still holding a live lease (its heartbeat may lag).
    let mut replicas: BTreeSet<&str> = replicas.iter().map(String::as_str).collect();
    replicas.extend(
        leases
            .iter()
            .filter(live)
            .filter(|l| enabled.contains(&l.cluster_id))
            .map(|l| l.holder.as_str()),
    );
    replicas.insert(me);
    let share = enabled.len().div_ceil(replicas.len()).min(cap);
    let holder_of = |cluster: &str| leases.iter().find(|l| l.cluster_id == cluster);
    let mine: Vec<&String> = enabled
        .iter()
        .filter(|c| holder_of(c).is_some_and(|l| l.holder == me && l.until_ms >= now_ms))
        .collect();
    let keep: Vec<String> = mine.iter().take(share).map(|c| (*c).clone()).collect();
    let release: Vec<String> = mine.iter().skip(share).map(|c| (*c).clone()).collect();
    let room = share - keep.len();
    let take = enabled
        .iter()
        .filter(|c| !mine.contains(c))
        .filter(|c| holder_of(c).is_none_or(|l| !live(&l)))
        .take(room)
        .cloned()
        .collect();
    Claims {
        keep,
        take,
        release,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i:02}")).collect()
    }

    fn lease(cluster: &str, holder: &str, until_ms: i64) -> Lease {
        Lease {
            cluster_id: cluster.to_owned(),
            holder: holder.to_owned(),
            until_ms,
        }
    }

    #[test]
    fn one_replica_takes_every_cluster_up_to_its_cap() {
        let all = clusters(5);
        assert_eq!(plan(&all, &[], &[], "a", 100, 10).take, all);
        let capped = plan(&all, &[], &[], "a", 100, 3);
        assert_eq!(capped.take, clusters(3));
        assert!(capped.keep.is_empty() && capped.release.is_empty());
    }

    #[test]
    fn a_second_replica_gets_half_and_the_first_lets_go_of_the_rest() {
        let all = clusters(6);
        let held: Vec<Lease> = all.iter().map(|c| lease(c, "a", 200)).collect();
        let running = ["a".to_owned(), "b".to_owned()];
        // Alone, `a` keeps all six.
        assert_eq!(
            plan(&all, &held, &running[..1], "a", 100, 100).keep.len(),
            6
        );
        // `b` starts and beats: every cluster is held, so it takes nothing yet...
        let b = plan(&all, &held, &running, "b", 100, 100);
        assert!(b.take.is_empty() && b.keep.is_empty());
        // ...and `a`, seeing two replicas, keeps its share of 3 and lets go of the rest.
        let a = plan(&all, &held, &running, "a", 100, 100);
        assert_eq!(a.keep, clusters(3));
        assert_eq!(a.release, all[3..].to_vec());
        // The released ones are free for `b`, up to its share.
        let mut after = held.clone();
        for lease in &mut after[3..] {
            lease.until_ms = 0;
        }
        let b = plan(&all, &after, &running, "b", 100, 100);
        assert_eq!(b.take, all[3..].to_vec());
        // Seven clusters over two replicas: shares of 4, so nobody is left out.
        let seven = clusters(7);
        let a = plan(&seven, &[], &running, "a", 100, 100);
        assert_eq!(a.take.len(), 4);
    }

    #[test]
    fn a_stopped_replicas_clusters_are_taken_and_it_no_longer_counts() {
        let all = clusters(4);
        let leases = vec![
            lease("c00", "dead", 50),
            lease("c01", "dead", 50),
            lease("c02", "b", 500),
            lease("c03", "b", 500),
        ];
        // Two live replicas (b and me): a share of 2 each; the dead one's clusters are free.
        let running = ["a".to_owned(), "b".to_owned()];
        let a = plan(&all, &leases, &running, "a", 100, 100);
        assert_eq!(a.take, clusters(2));
        // A disabled (not enabled) cluster's lease neither counts nor is taken: alone with the
        // two free clusters, `a` takes both.
        let a = plan(&all[..2], &leases, &running[..1], "a", 100, 100);
        assert_eq!(a.take, clusters(2));
    }
}
