package mesh

import (
	"context"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/ownership"
)

// installGatewayAPI puts the Gateway API's standard channel (gatewayapi.Version, from dir) into
// a cluster that has none and waits until its CRDs are served; a cluster that has the Gateway
// API is left as found (logged with the version it has). What it creates carries the ownership
// labels (with the run id when there is one), so that Uninstall removes only that.
func (i *Installer) installGatewayAPI(ctx context.Context, o Options, dir string) error {
	if !o.wantsGatewayAPI() {
		return nil
	}
	c, err := i.gatewayClients()
	if err != nil {
		return err
	}
	labels := map[string]string{ownership.ManagedByKey: ownership.ManagedByValue}
	if o.RunID != "" {
		labels = ownership.Labels(o.RunID)
	}
	got, err := gatewayapi.Install(ctx, c, dir, labels)
	if err != nil {
		return err
	}
	if got.Found != "" {
		i.log.Info("Gateway API already installed; left as it is", "bundleVersion", got.Found, "wanted", gatewayapi.Version)
		return nil
	}
	i.log.Info("Gateway API CRDs created", "version", gatewayapi.Version, "channel", gatewayapi.Channel, "count", len(got.CRDs))
	return WaitFor(ctx, o.Timeout, "gateway-api", i.log, func(ctx context.Context) string {
		return gatewayapi.NotEstablished(ctx, c, got.CRDs)
	})
}

// uninstallGatewayAPI removes the Gateway API objects this run's Install created (its run id's
// ownership labels; nothing without a run id) and waits until the CRDs are gone. A Gateway API
// the cluster had before carries no such label and stays.
func (i *Installer) uninstallGatewayAPI(ctx context.Context, o Options) error {
	if o.RunID == "" {
		return nil
	}
	c, err := i.gatewayClients()
	if err != nil {
		return err
	}
	names, err := gatewayapi.Uninstall(ctx, c, o.RunID)
	if err != nil || len(names) == 0 {
		return err
	}
	if err := WaitFor(ctx, o.Timeout, "Gateway API CRD deletion", i.log, func(ctx context.Context) string {
		return gatewayapi.Gone(ctx, c, names)
	}); err != nil {
		return err
	}
	i.log.Info("Gateway API CRDs deleted", "count", len(names))
	return nil
}

func (i *Installer) gatewayClients() (gatewayapi.Clients, error) {
	k, err := i.client()
	if err != nil {
		return gatewayapi.Clients{}, err
	}
	ext, err := i.extClient()
	if err != nil {
		return gatewayapi.Clients{}, err
	}
	return gatewayapi.Clients{Kube: k, Ext: ext}, nil
}
